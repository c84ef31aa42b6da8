from core.errors import AppError, NotFoundError


class MemberNotFoundError(NotFoundError):
    code, status, title = "member_not_found", 404, "Member not found"


class InvitationNotFoundError(NotFoundError):
    code, status, title = "invitation_not_found", 404, "Invitation not found"


class LastOwnerError(AppError):
    code, status, title = "last_owner", 409, "The workspace needs an owner"


class InvitationInvalidError(AppError):
    code, status, title = "invitation_invalid", 400, "Invitation is not valid"


class AlreadyMemberError(AppError):
    code, status, title = "already_member", 409, "Already a member"


class RoleNotAllowedError(AppError):
    code, status, title = "role_not_allowed", 403, "Role cannot be given"
