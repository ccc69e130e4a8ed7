"""/auth, /users/me and /users/me/addresses: thin handlers over AccountService."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import ALL_ROLES, IdentityDep, roles
from api.commerce.accounts import schemas as s
from api.commerce.deps import AccountServiceDep
from api.commerce.paging import Page, PageQueryDep

PUBLIC = {"public": True}


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/register", opt=PUBLIC, summary="Register (customer, chef or delivery; never admin)")
    async def register(self, data: JSONBody[s.RegisterRequest],
                       accounts: AccountServiceDep) -> s.TokenPair:
        return await accounts.register(data)

    @post("/login", opt=PUBLIC, status_code=200, summary="Log in with email and password")
    async def login(self, data: JSONBody[s.LoginRequest], accounts: AccountServiceDep,
                    request: Request[Any, Any, Any]) -> s.TokenPair:
        return await accounts.login(data, _client_ip(request))

    @post("/login/social", opt=PUBLIC, status_code=200, summary="Log in with a social provider")
    async def social(self, data: JSONBody[s.SocialLoginRequest],
                     accounts: AccountServiceDep) -> s.TokenPair:
        return await accounts.social_login(data)

    @post("/refresh", opt=PUBLIC, status_code=200, summary="Rotate a refresh token")
    async def refresh(self, data: JSONBody[s.RefreshRequest],
                      accounts: AccountServiceDep) -> s.TokenPair:
        return await accounts.refresh(data.refresh_token)

    @post("/logout", status_code=200, guards=[roles(*ALL_ROLES)],
          summary="Revoke the session of a refresh token (all sessions without one)")
    async def logout(self, identity: IdentityDep, accounts: AccountServiceDep,
                     data: JSONBody[s.RefreshRequest | None] = None) -> s.Accepted:
        await accounts.logout(identity.user_id, data.refresh_token if data else None)
        return s.Accepted(detail="logged out")

    @post("/forgot-password", opt=PUBLIC, status_code=202,
          summary="Send a one-time reset token by email")
    async def forgot(self, data: JSONBody[s.ForgotPasswordRequest],
                     accounts: AccountServiceDep) -> s.Accepted:
        await accounts.forgot_password(data.email)
        return s.Accepted(detail="if the account exists, a reset token was sent")

    @post("/reset-password", opt=PUBLIC, status_code=200, summary="Reset with a one-time token")
    async def reset(self, data: JSONBody[s.ResetPasswordRequest],
                    accounts: AccountServiceDep) -> s.Accepted:
        await accounts.reset_password(data.token, data.password)
        return s.Accepted(detail="password changed")

    @post("/send-otp", status_code=202, guards=[roles(*ALL_ROLES)],
          summary="Send a phone verification code by SMS")
    async def send_otp(self, data: JSONBody[s.SendOtpRequest], identity: IdentityDep,
                       accounts: AccountServiceDep) -> s.Accepted:
        await accounts.send_otp(identity.user_id, data.phone)
        return s.Accepted(detail="code sent")

    @post("/verify-otp", status_code=200, guards=[roles(*ALL_ROLES)],
          summary="Verify the phone code")
    async def verify_otp(self, data: JSONBody[s.VerifyOtpRequest], identity: IdentityDep,
                         accounts: AccountServiceDep) -> s.User:
        return await accounts.verify_otp(identity.user_id, data.phone, data.code)


class UsersController(Controller):
    path = "/users/me"
    tags = ["users"]
    guards = [roles(*ALL_ROLES)]

    @get("", summary="The current user")
    async def me(self, identity: IdentityDep, accounts: AccountServiceDep) -> s.User:
        return await accounts.me(identity.user_id)

    @put("", summary="Update the current user")
    async def update_me(self, data: JSONBody[s.UserUpdate], identity: IdentityDep,
                        accounts: AccountServiceDep) -> s.User:
        return await accounts.update_me(identity.user_id, data)

    @get("/addresses", summary="The current user's addresses")
    async def addresses(self, identity: IdentityDep, accounts: AccountServiceDep,
                        paging: PageQueryDep) -> Page[s.Address]:
        return await accounts.addresses(identity.user_id, paging)

    @post("/addresses", summary="Add an address")
    async def add_address(self, data: JSONBody[s.AddressCreate], identity: IdentityDep,
                          accounts: AccountServiceDep) -> s.Address:
        return await accounts.add_address(identity.user_id, data)

    @put("/addresses/{address_id:uuid}", summary="Update an address")
    async def update_address(self, address_id: FromPath[UUID], data: JSONBody[s.AddressUpdate],
                             identity: IdentityDep,
                             accounts: AccountServiceDep) -> s.Address:
        return await accounts.update_address(identity.user_id, address_id, data)

    @delete("/addresses/{address_id:uuid}", summary="Delete an address")
    async def delete_address(self, address_id: FromPath[UUID], identity: IdentityDep,
                             accounts: AccountServiceDep) -> None:
        await accounts.delete_address(identity.user_id, address_id)
