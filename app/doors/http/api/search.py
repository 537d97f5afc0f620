"""POST /api/v1/search: the passages that match a query, among those the caller may read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.doors.http.api.auth import ReadCaller
from app.doors.http.api.citations import Citation, from_passage
from app.doors.http.api.errors import ApiError

router = APIRouter(tags=["search and ask"])


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, description="at most 4,000 characters (413 above)")
    limit: int = Field(default=8, ge=1, le=50)
    as_admin: bool = Field(default=False, description="search every document (admin-scope key of an admin)")


class SearchResponse(BaseModel):
    passages: list[Citation]


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, request: Request, caller: ReadCaller) -> SearchResponse:
    """Hybrid search filtered by the key owner's groups inside the query (no LLM)."""
    if body.as_admin and not caller.may_act_as_admin:
        raise ApiError(403, "forbidden", "as_admin needs an admin-scope key: `kura keys create --scope admin`")
    passages = request.app.state.get_service().search(caller.user, body.query, body.limit, as_admin=body.as_admin)
    return SearchResponse(passages=[from_passage(p, n) for n, p in enumerate(passages, start=1)])
