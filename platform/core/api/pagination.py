"""The one pagination of API lists: opaque cursors over a unique key, pages of bounded size.

A cursor pages by `id`, never by offset: a row created or deleted meanwhile neither repeats
nor skips another, and no page counts the table.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

PAGE_SIZE_DEFAULT = 25
PAGE_SIZE_MAX = 100


class CursorPage(CursorPagination):
    """`?page_size=` (1 to 100, 25 unless asked) rows a page; `next`/`previous` carry the cursor."""

    page_size = PAGE_SIZE_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX
    # Unique and never changing: the cursor's position is one row, not a tie of many.
    ordering = ("id",)


def paginated(
    view: APIView, request: Request, rows: QuerySet[Any], output: type[Serializer[Any]]
) -> Response:
    """Answer one page of `rows` as `output` renders each, with the cursors to the others."""
    paginator: CursorPagination = getattr(view, "pagination_class", CursorPage)()
    page = paginator.paginate_queryset(rows, request, view=view)
    # The request, as DRF's own views give it: fields may build absolute links from it.
    rendered = output(page, many=True, context={"request": request, "view": view})
    return paginator.get_paginated_response(rendered.data)
