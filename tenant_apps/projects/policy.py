"""Projects ask the workspace's one policy module (tenant_apps.members.policy)."""

from tenant_apps.members.policy import can, require

__all__ = ["can", "require"]
