import importlib

Migration = importlib.import_module("tenant_apps.workspace.migrations.0001_initial").Migration
