"""An ordinary Starlette application (nothing in it knows of aiostack), served by uvicorn:

    aiostack run --driver tap ... -- uvicorn --app-dir examples starlette_app:app --host 0.0.0.0 --port 8000
    AIOSTACK_ARGS="--driver tap ..." uvicorn --loop aiostack:new_event_loop ...
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from Starlette\n")


async def item(request: Request) -> JSONResponse:
    client = request.client.host if request.client else None
    return JSONResponse({"item": int(request.path_params["n"]), "client": client})


app = Starlette(routes=[Route("/", index), Route("/items/{n:int}", item)])
