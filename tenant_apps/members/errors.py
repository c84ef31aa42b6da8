from core.errors import AppError


class LastOwnerError(AppError):
    code, status, title = "last_owner", 409, "The workspace needs an owner"


class InvitationInvalidError(AppError):
    code, status, title = "invitation_invalid", 400, "Invitation is not valid"


class AlreadyMemberError(AppError):
    code, status, title = "already_member", 409, "Already a member"


class RoleNotAllowedError(AppError):
    code, status, title = "role_not_allowed", 403, "Role cannot be given"
