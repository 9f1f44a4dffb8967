"""JSON answers and JSON reading on the hot paths, by orjson.

`JSONResponse` is Starlette's, with the body encoded by orjson: the same
bytes as Starlette's `json.dumps(..., ensure_ascii=False,
separators=(",", ":"))` for everything the services answer (UTF-8 text
unescaped, no spaces, keys in insertion order, non-string keys as strings;
tests/services/test_responses.py), in a fraction of the time. A page of 50
movies was encoded by the standard library in about as long as the rest of
the request took. `loads` reads stored records (JSON the services wrote).
Request bodies keep the standard library's parser (services/common/body.py),
whose error messages the API documents.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse

loads = orjson.loads


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
