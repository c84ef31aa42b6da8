"""Fail closed: a model that exists only in tenant schemas is never queried on public."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Model

from tenancy.context import PUBLIC_SCHEMA, active_schema
from tenancy.errors import NoActiveTenantError


@cache
def tenant_only_labels() -> frozenset[str]:
    shared = {apps.get_containing_app_config(name) for name in settings.SHARED_APPS}
    labels = set()
    for name in settings.TENANT_APPS:
        config = apps.get_containing_app_config(name)
        if config is not None and config not in shared:
            labels.add(config.label)
    return frozenset(labels)


class TenantDataRouter:
    """Raise before a tenant-only model is read or written without an active tenant."""

    def _check(self, model: type[Model]) -> None:
        if model._meta.app_label not in tenant_only_labels():
            return
        schema = active_schema() or getattr(connection, "schema_name", PUBLIC_SCHEMA)
        if schema == PUBLIC_SCHEMA:
            raise NoActiveTenantError(
                f"{model._meta.label} lives in tenant schemas and no tenant is active"
            )

    def db_for_read(self, model: type[Model], **hints: Any) -> None:
        self._check(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> None:
        self._check(model)
