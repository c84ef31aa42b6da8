import importlib

Migration = importlib.import_module("tests.fleet_app.migrations.0001_initial").Migration
