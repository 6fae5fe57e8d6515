from django.db import models


class MembershipRole(models.TextChoices):
    MEMBER = "member", "Member"
    ADMIN = "org-admin", "Organization admin"
