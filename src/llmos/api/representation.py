"""How the resource routes write a reply: JSON, or YAML when the client asks for it.

A reply may be a Python object or JSON text already encoded (the store keeps
objects as JSON, so a get or list passes its text through untouched).
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from fastapi import Request
from starlette.responses import Response


def wants_yaml(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "yaml" in accept and "json" not in accept


def respond(request: Request, obj: Any, code: int = 200) -> Response:
    if wants_yaml(request):
        text = yaml.safe_dump(obj if not isinstance(obj, str) else orjson.loads(obj))
        return Response(text, code, media_type="application/yaml")
    payload = obj.encode() if isinstance(obj, str) else orjson.dumps(obj)
    return Response(payload, code, media_type="application/json")
