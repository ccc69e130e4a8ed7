"""Accounts: registration, login with rate limits, rotating refresh tokens, password reset,
phone OTP, social login, profile and addresses. All SQL and Redis of the domain lives here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from api.auth import Role
from api.commerce.accounts import schemas as s
from api.commerce.accounts.passwords import Passwords
from api.commerce.context import Commerce
from api.commerce.ids import user_uuid
from api.commerce.notifications.sinks import OutboundMessage, send_now
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources

_USER_COLS = (
    "id, email, phone, first_name, last_name, avatar, role, email_verified, phone_verified, "
    "is_active, last_login_at, created_at, updated_at"
)
_ADDRESS_COLS = (
    "id, user_id, label, line1, line2, city, state, postal_code, country, latitude, longitude, "
    "is_default, created_at, updated_at"
)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def insert_user(conn: asyncpg.Connection, *, email: str, password_hash: str, role: str,
                      first_name: str = "", last_name: str = "", phone: str | None = None,
                      email_verified: bool = False) -> s.User:
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO users (email, password_hash, role, first_name, last_name, phone,
                                   email_verified)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_USER_COLS}""",
            email.strip(), password_hash, role, first_name, last_name, phone, email_verified,
        )
    except asyncpg.UniqueViolationError:
        raise Problem(409, "an account with this email or phone already exists",
                      code="account_exists") from None
    assert row is not None
    return one(s.User, row)


async def create_admin(db: asyncpg.Pool, email: str, password: str,
                       passwords: Passwords | None = None) -> s.User:
    """Create an admin account (CLI only: admins are never self-registered)."""
    pw_hash = await (passwords or Passwords()).hash(password)
    async with db.acquire() as conn:
        return await insert_user(conn, email=email, password_hash=pw_hash,
                                 role=Role.ADMIN.value, email_verified=True)


def display_name(first: str | None, last: str | None) -> str:
    """"Eli M." — what staff screens call a user (no full surname in a token)."""
    first, last = (first or "").strip(), (last or "").strip()
    return f"{first} {last[:1]}.".strip() if last else first


class AccountService:
    def __init__(self, resources: Resources, commerce: Commerce) -> None:
        self.db = resources.db
        self.redis = resources.redis
        self.tokens = resources.tokens
        self.ns = resources.settings.server.namespace
        self.commerce = commerce
        self.config = commerce.config
        self.passwords = commerce.passwords

    # -- tokens ------------------------------------------------------------------------------
    async def _issue_pair(self, conn: asyncpg.Connection, user: s.User,
                          family_id: uuid.UUID | None = None) -> s.TokenPair:
        access = self.tokens.issue(str(user.id), user.role, email=user.email,
                                   name=display_name(user.first_name, user.last_name))
        secret = secrets.token_urlsafe(32)
        await conn.execute(
            """INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
               VALUES ($1, $2, $3, now() + make_interval(secs => $4))""",
            user.id, family_id or uuid.uuid4(), _sha256(secret), self.config.refresh_ttl_s,
        )
        return s.TokenPair(access_token=access, refresh_token=secret,
                           expires_in=self.tokens.ttl_s, user=user)

    async def register(self, req: s.RegisterRequest) -> s.TokenPair:
        pw_hash = await self.passwords.hash(req.password)
        async with self.db.acquire() as conn, conn.transaction():
            user = await insert_user(conn, email=req.email, password_hash=pw_hash,
                                     role=req.role, first_name=req.first_name,
                                     last_name=req.last_name, phone=req.phone)
            return await self._issue_pair(conn, user)

    def _fail_keys(self, email: str, ip: str) -> tuple[str, str]:
        return (f"{self.ns}:login:fail:acct:{_sha256(email.strip().lower())}",
                f"{self.ns}:login:fail:ip:{ip}")

    async def login(self, req: s.LoginRequest, ip: str) -> s.TokenPair:
        acct_key, ip_key = self._fail_keys(req.email, ip)
        # Two reads, not MGET: on a Redis Cluster the two counters live on any two shards
        # (they are independent, so nothing needs them read together).
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(acct_key)
            pipe.get(ip_key)
            acct_fails, ip_fails = await pipe.execute()
        if (int(acct_fails or 0) >= self.config.login_max_failures_per_account
                or int(ip_fails or 0) >= self.config.login_max_failures_per_ip):
            raise Problem(429, "too many failed logins; try again later", code="rate_limited",
                          headers={"Retry-After": str(self.config.login_window_s)})
        row = await self.db.fetchrow(
            f"SELECT password_hash, {_USER_COLS} FROM users WHERE lower(email) = lower($1)",
            req.email.strip(),
        )
        ok = await self.passwords.verify(row["password_hash"] if row else None, req.password)
        if not ok or row is None or not row["is_active"]:
            for key in (acct_key, ip_key):  # one transaction per key: one slot each
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, self.config.login_window_s)
                    await pipe.execute()
            raise Problem(401, "invalid email or password", code="invalid_credentials")
        await self.redis.delete(acct_key)
        async with self.db.acquire() as conn, conn.transaction():
            urow = await conn.fetchrow(
                f"UPDATE users SET last_login_at = now() WHERE id = $1 RETURNING {_USER_COLS}",
                row["id"],
            )
            assert urow is not None
            return await self._issue_pair(conn, one(s.User, urow))

    async def refresh(self, token: str) -> s.TokenPair:
        """Rotate: the presented token is spent; presenting a spent one revokes its family."""
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT id, user_id, family_id, expires_at, used_at, revoked_at
                   FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE""",
                _sha256(token),
            )
            if row is None:
                raise Problem(401, "invalid refresh token", code="invalid_refresh_token")
            if row["used_at"] is not None or row["revoked_at"] is not None:
                await conn.execute(
                    """UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())
                       WHERE family_id = $1""", row["family_id"])
                # Commit the revocation, then refuse.
                reuse = row["used_at"] is not None
            elif row["expires_at"] <= datetime.now(UTC):
                raise Problem(401, "refresh token expired", code="refresh_token_expired")
            else:
                reuse = None
                await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1",
                                   row["id"])
                urow = await conn.fetchrow(
                    f"SELECT {_USER_COLS} FROM users WHERE id = $1", row["user_id"])
                if urow is None or not urow["is_active"]:
                    raise Problem(401, "account disabled", code="account_disabled")
                return await self._issue_pair(conn, one(s.User, urow), row["family_id"])
        if reuse:
            raise Problem(401, "refresh token reuse detected; the session was revoked",
                          code="refresh_token_reused")
        raise Problem(401, "refresh token revoked", code="refresh_token_revoked")

    async def logout(self, user_id: str, token: str | None) -> None:
        """Revoke the session of ``token`` (or every session of the user without one)."""
        if token:
            await self.db.execute(
                """UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())
                   WHERE family_id = (SELECT family_id FROM refresh_tokens
                                      WHERE token_hash = $1 AND user_id = $2)""",
                _sha256(token), user_uuid(user_id))
        else:
            await self.db.execute(
                "UPDATE refresh_tokens SET revoked_at = now() "
                "WHERE user_id = $1 AND revoked_at IS NULL", user_uuid(user_id))

    # -- password reset --------------------------------------------------------------------
    async def forgot_password(self, email: str) -> None:
        row = await self.db.fetchrow(
            "SELECT id, email FROM users WHERE lower(email) = lower($1) AND is_active",
            email.strip())
        if row is None:
            return  # same answer either way: do not reveal which emails exist
        token = secrets.token_urlsafe(32)
        await self.db.execute(
            """INSERT INTO password_resets (token_hash, user_id, expires_at)
               VALUES ($1, $2, now() + make_interval(secs => $3))""",
            _sha256(token), row["id"], self.config.reset_ttl_s)
        await send_now(self.commerce.messages, OutboundMessage(
            channel="email", to=row["email"], subject="Reset your HomeChef password",
            body="Use this one-time token to reset your password.", data={"token": token}))

    async def reset_password(self, token: str, password: str) -> None:
        pw_hash = await self.passwords.hash(password)
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """UPDATE password_resets SET used_at = now()
                   WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
                   RETURNING user_id""", _sha256(token))
            if row is None:
                raise Problem(400, "invalid or expired reset token", code="invalid_reset_token")
            await conn.execute(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
                row["user_id"], pw_hash)
            # A reset ends every session.
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() "
                "WHERE user_id = $1 AND revoked_at IS NULL", row["user_id"])

    # -- phone OTP -------------------------------------------------------------------------
    def _otp_key(self, user_id: str) -> str:
        return f"{self.ns}:otp:{user_id}"

    async def send_otp(self, user_id: str, phone: str) -> None:
        code = f"{secrets.randbelow(10**6):06d}"
        key = self._otp_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"phone": phone, "code": _sha256(code), "attempts": 0})
            pipe.expire(key, self.config.otp_ttl_s)
            await pipe.execute()
        await send_now(self.commerce.messages, OutboundMessage(
            channel="sms", to=phone, subject="HomeChef code",
            body=f"Your HomeChef code is {code}", data={"code": code}))

    async def verify_otp(self, user_id: str, phone: str, code: str) -> s.User:
        key = self._otp_key(user_id)
        raw: dict[Any, Any] = await self.redis.hgetall(key)
        stored = {bytes(k): bytes(v) for k, v in raw.items()}
        if not stored or stored.get(b"phone", b"").decode() != phone:
            raise Problem(400, "no pending code for this phone", code="otp_invalid")
        attempts = await self.redis.hincrby(key, "attempts", 1)
        if attempts > self.config.otp_max_attempts:
            await self.redis.delete(key)
            raise Problem(429, "too many attempts; request a new code", code="otp_locked")
        if not hmac.compare_digest(stored[b"code"].decode(), _sha256(code)):
            raise Problem(400, "wrong code", code="otp_invalid")
        await self.redis.delete(key)
        try:
            row = await self.db.fetchrow(
                f"""UPDATE users SET phone = $2, phone_verified = true, updated_at = now()
                    WHERE id = $1 RETURNING {_USER_COLS}""", user_uuid(user_id), phone)
        except asyncpg.UniqueViolationError:
            raise Problem(409, "this phone belongs to another account",
                          code="phone_taken") from None
        if row is None:
            raise Problem(404, "user not found", code="not_found")
        return one(s.User, row)

    # -- social ----------------------------------------------------------------------------
    async def social_login(self, req: s.SocialLoginRequest) -> s.TokenPair:
        provider = self.commerce.social.get(req.provider)
        if provider is None:
            raise Problem(501, f"social login with {req.provider} is not configured",
                          code="social_login_unavailable")
        ident = await provider.verify(req.token)
        if ident is None or not ident.email_verified:
            raise Problem(401, "the provider did not confirm this identity",
                          code="social_login_rejected")
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_USER_COLS} FROM users WHERE lower(email) = lower($1)", ident.email)
            if row is not None:
                user = one(s.User, row)
                if not user.is_active:
                    raise Problem(401, "account disabled", code="account_disabled")
            else:
                unusable = "!social:" + secrets.token_hex(16)  # no password login possible
                user = await insert_user(conn, email=ident.email, password_hash=unusable,
                                         role="customer", first_name=ident.first_name,
                                         last_name=ident.last_name, email_verified=True)
            return await self._issue_pair(conn, user)

    # -- profile ---------------------------------------------------------------------------
    async def me(self, user_id: str) -> s.User:
        row = await self.db.fetchrow(f"SELECT {_USER_COLS} FROM users WHERE id = $1",
                                     user_uuid(user_id))
        if row is None:
            raise Problem(404, "user not found", code="not_found")
        return one(s.User, row)

    async def update_me(self, user_id: str, req: s.UserUpdate) -> s.User:
        row = await self.db.fetchrow(
            f"""UPDATE users SET first_name = coalesce($2, first_name),
                    last_name = coalesce($3, last_name), avatar = coalesce($4, avatar),
                    updated_at = now()
                WHERE id = $1 RETURNING {_USER_COLS}""",
            user_uuid(user_id), req.first_name, req.last_name, req.avatar)
        if row is None:
            raise Problem(404, "user not found", code="not_found")
        return one(s.User, row)

    # -- addresses -------------------------------------------------------------------------
    async def addresses(self, user_id: str, q: PageQuery) -> Page[s.Address]:
        rows = await self.db.fetch(
            f"SELECT {_ADDRESS_COLS}, count(*) OVER () AS total FROM addresses "
            "WHERE user_id = $1 ORDER BY is_default DESC, created_at LIMIT $2 OFFSET $3",
            user_uuid(user_id), q.limit, q.offset)
        return page_of(s.Address, rows, q)

    async def add_address(self, user_id: str, req: s.AddressCreate) -> s.Address:
        uid = user_uuid(user_id)
        async with self.db.acquire() as conn, conn.transaction():
            if req.is_default:
                await conn.execute("UPDATE addresses SET is_default = false WHERE user_id = $1",
                                   uid)
            row = await conn.fetchrow(
                f"""INSERT INTO addresses (user_id, label, line1, line2, city, state,
                        postal_code, country, latitude, longitude, is_default)
                    VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING {_ADDRESS_COLS}""",
                uid, req.label, req.line1, req.line2, req.city, req.state, req.postal_code,
                req.country, req.latitude, req.longitude, req.is_default)
            assert row is not None
            return one(s.Address, row)

    async def update_address(self, user_id: str, address_id: uuid.UUID,
                             req: s.AddressUpdate) -> s.Address:
        uid = user_uuid(user_id)
        fields: dict[str, Any] = {
            k: getattr(req, k) for k in req.__struct_fields__ if getattr(req, k) is not None
        }
        async with self.db.acquire() as conn, conn.transaction():
            if fields.get("is_default"):
                await conn.execute("UPDATE addresses SET is_default = false WHERE user_id = $1",
                                   uid)
            sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=3))
            row = await conn.fetchrow(
                f"""UPDATE addresses SET {sets + ', ' if sets else ''}updated_at = now()
                    WHERE id = $1 AND user_id = $2 RETURNING {_ADDRESS_COLS}""",
                address_id, uid, *fields.values())
            if row is None:
                raise Problem(404, "address not found", code="not_found")
            return one(s.Address, row)

    async def delete_address(self, user_id: str, address_id: uuid.UUID) -> None:
        done = await self.db.execute(
            "DELETE FROM addresses WHERE id = $1 AND user_id = $2", address_id, user_uuid(user_id))
        if done == "DELETE 0":
            raise Problem(404, "address not found", code="not_found")


__all__ = ["AccountService", "create_admin", "insert_user"]
