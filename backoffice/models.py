from __future__ import annotations

from django.db import models


class FlashFXToken(models.Model):
    """The FlashFX token shared by every process, when there is no Redis (one row, pk=1).

    The row is also the login lock: the process that logs in holds `SELECT ... FOR UPDATE` on
    it (on SQLite, the IMMEDIATE transaction's write lock) for the whole login call, so the
    others wait, then reuse its token (backoffice/flashfx.py, flashfx/tokens.py).
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.TextField(blank=True)  # a bearer secret; empty when there is none
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "FlashFX token"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="flashfx_token_singleton")
        ]

    def __str__(self) -> str:  # never the token itself
        return f"FlashFX token (expires {self.expires_at})" if self.token else "no FlashFX token"
