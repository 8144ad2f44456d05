"""The HTTP service (FastAPI): the outermost layer, on top of everything else.

It owns the wiring of the application (:mod:`.app`), the request and response bodies
(:mod:`.schemas`), API keys and size limits (:mod:`.security`), the server's files (:mod:`.storage`),
its in-process caches and recommendation service (:mod:`.services`), the search queue and worker
processes (:mod:`.jobs`), the shared state handed to requests (:mod:`.dependencies`) and one thin
router per resource (:mod:`.routers`). Nothing below it imports it.
"""
