"""Documents for admins: list them with their groups, change their groups, delete them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.doors.http.api.auth import AdminCaller

router = APIRouter(tags=["documents"])


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    file_type: str
    pages: int
    chunks: int
    paths: list[str]
    groups: list[str]


class GroupsIn(BaseModel):
    groups: list[str] = Field(min_length=1)


class AclIn(BaseModel):
    target: str = Field(description="a document id, or an ingested file or folder (absolute path on the server)")
    groups: list[str] = Field(min_length=1)


@router.get("/documents", response_model=list[DocumentOut])
def list_documents(request: Request, caller: AdminCaller) -> list[DocumentOut]:
    service = request.app.state.get_service()
    out = []
    for d in service.documents(caller.user):
        files = service.document_files(caller.user, d.doc_id)
        out.append(
            DocumentOut(
                doc_id=d.doc_id,
                title=d.title,
                file_type=d.file_type,
                pages=d.page_count,
                chunks=d.chunk_count,
                paths=[f.path for f in files],
                groups=sorted({g for f in files for g in f.groups}),
            )
        )
    return out


@router.put("/documents/{doc_id}/groups")
def set_groups(doc_id: str, body: GroupsIn, request: Request, caller: AdminCaller) -> dict:
    """Which groups may read the document (every path of it), without re-embedding."""
    changed = request.app.state.get_service().set_acl(caller.user, doc_id, body.groups)
    return {"doc_id": doc_id, "groups": sorted(set(body.groups)), "files_changed": changed}


@router.put("/acl")
def set_acl(body: AclIn, request: Request, caller: AdminCaller) -> dict:
    """Which groups may read a document, an ingested file, or every file under a folder
    (`kura acl set`), without re-embedding; applies to the next query."""
    changed = request.app.state.get_service().set_acl(caller.user, body.target, body.groups)
    return {"target": body.target, "groups": sorted(set(body.groups)), "files_changed": changed}


@router.delete("/documents/{doc_id}")
def delete_document(doc_id: str, request: Request, caller: AdminCaller) -> dict:
    request.app.state.get_service().delete(caller.user, doc_id)
    return {"doc_id": doc_id, "deleted": True}
