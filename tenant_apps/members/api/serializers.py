"""Shapes the members endpoints share: what a person and an invitation look like from outside.

Never a password hash, a session, an invitation's token or a second factor's secrets: a
person is who they are and what they may do, plus, for admins and owners, whether a second
factor guards their sign-in.
"""

from __future__ import annotations

from rest_framework import serializers

from shared_apps.accounts.models import User


class MemberSummary(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    role = serializers.ChoiceField(choices=User.Role.choices)
    joined_at = serializers.DateTimeField()
    # Annotated by the members selectors: null for a caller who may not know it.
    has_two_factor = serializers.BooleanField(allow_null=True)


class InvitationSummary(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=User.Role.choices)
    invited_by = serializers.IntegerField(source="invited_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
