"""`tenants migrate`: bring every tenant's schema to the migrations on disk, fast and safely.

Why not django-tenants' `migrate_schemas`: it loads the migration graph and introspects the
catalog once per tenant (its cost grows with the square of the fleet), stops at the first
failing tenant and records nothing (see docs/operations.md, "Migrations"). Here:

- Tenants already at the migrations on disk are found with one query on
  `TenantMigration.migration_state`, a fingerprint of the tenant migrations, and skipped
  (`ledger`).
- Each worker process loads the migration graph once (`workers`). Tenants with the same
  applied migrations share one compiled plan: the SQL Django would run (what `sqlmigrate`
  prints) is collected once, inside the first such tenant, and replayed in one round trip
  for each of the others. A plan with Python code (RunPython) runs Django's own executor
  per tenant instead, starting from a project state rendered once (`compiler`).
- Each tenant migrates in its own transaction, together with its outcome row in the public
  schema: a crash or SIGKILL leaves every tenant either migrated and recorded, or untouched.
  A per-tenant advisory lock keeps two runs from migrating the same tenant at once.
- One tenant failing is recorded (state, error, attempts) and the others go on; a re-run
  retries only what failed or is pending.

`run.fleet_migrate` puts it together: public schema, tenants, provisioning template.
"""
