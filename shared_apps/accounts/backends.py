from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Sign in by e-mail, matched case-insensitively (UserManager.get_by_natural_key)."""
