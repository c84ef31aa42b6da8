"""Database backend: django-tenants' PostgreSQL wrapper, following tenancy's ContextVar."""
