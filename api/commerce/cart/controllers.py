"""/cart: the customer's cart."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import IdentityDep, Role, roles
from api.commerce.cart import schemas as s
from api.commerce.deps import CartServiceDep


class CartController(Controller):
    path = "/cart"
    tags = ["cart"]
    guards = [roles(Role.CUSTOMER)]

    @get("", summary="The cart")
    async def get_cart(self, identity: IdentityDep, cart: CartServiceDep) -> s.Cart:
        return await cart.get(identity.user_id)

    @post("/items", summary="Add an item (409 when the cart holds another chef's items)")
    async def add(self, data: JSONBody[s.CartItemAdd], identity: IdentityDep,
                  cart: CartServiceDep) -> s.Cart:
        return await cart.add(identity.user_id, data)

    @put("/items/{cart_item_id:uuid}", summary="Change quantity or notes")
    async def update(self, cart_item_id: FromPath[UUID], data: JSONBody[s.CartItemUpdate],
                     identity: IdentityDep,
                     cart: CartServiceDep) -> s.Cart:
        return await cart.update(identity.user_id, cart_item_id, data)

    @delete("/items/{cart_item_id:uuid}", status_code=200, summary="Remove an item")
    async def remove(self, cart_item_id: FromPath[UUID], identity: IdentityDep,
                     cart: CartServiceDep) -> s.Cart:
        return await cart.remove(identity.user_id, cart_item_id)

    @delete("", summary="Empty the cart")
    async def clear(self, identity: IdentityDep, cart: CartServiceDep) -> None:
        await cart.clear(identity.user_id)
