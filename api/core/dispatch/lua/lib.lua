-- The dispatch scripts' library: prepended (after the prelude of values rendered from
-- Python: the state tables of dispatch.lifecycle and the key TTLs) to every transition.
-- P is the key prefix (<ns>:d), gs the live index's courier status hash.

local function set_courier(P, geo_status, id, state, now)
  redis.call('HSET', P .. ':c:' .. id, 'state', state, 'updated', now)
  redis.call('HSET', geo_status, id, state)
end
local function move_order(P, id, from, to)
  redis.call('SREM', P .. ':os:' .. from, id)
  redis.call('SADD', P .. ':os:' .. to, id)
  redis.call('HSET', P .. ':o:' .. id, 'state', to)
end
-- Courier c's state from what it holds (P:cs:<c>, orders assigned to it and not delivered)
-- and its open offer: nothing -> idle (or offered), any in CARRIED_STATES -> delivering,
-- else to_pickup. Keeps 'order' (the first held order, for single-order clients) current.
local function settle_courier(P, gs, c, now)
  local ckey = P .. ':c:' .. c
  local held = redis.call('SMEMBERS', P .. ':cs:' .. c)
  local offer = redis.call('HGET', ckey, 'offer') or ''
  if #held == 0 then
    if offer ~= '' then
      set_courier(P, gs, c, 'offered', now)
      redis.call('HSET', ckey, 'order', redis.call('HGET', P .. ':f:' .. offer, 'order') or '')
    else
      set_courier(P, gs, c, 'idle', now)
      redis.call('HSET', ckey, 'order', '')
    end
    return
  end
  table.sort(held)
  local st = 'to_pickup'
  for _, o in ipairs(held) do
    local ost = redis.call('HGET', P .. ':o:' .. o, 'state')
    if CARRIED_STATES[ost] then st = 'delivering' end
  end
  local cur = redis.call('HGET', ckey, 'order') or ''
  if redis.call('SISMEMBER', P .. ':cs:' .. c, cur) == 0 then
    redis.call('HSET', ckey, 'order', held[1])
  end
  set_courier(P, gs, c, st, now)
end
-- Offer waiting order o (of `region`) to courier c (checks done by the caller):
-- move_order(P, o, 'waiting', 'offered') and the offer, with the order's fields in one HSET.
-- With `pending` (a batch of claims), the state-set, queue, expiry-index (and, for idle
-- claims, status-hash) updates are collected and applied by flush_offers at the end of the
-- batch: no claim reads those keys (they read courier, order, declined and held-order keys
-- only), so the end state is the same.
local function open_offer(P, c, o, f, now, expires, region, pending)
  redis.call('HSET', P .. ':o:' .. o, 'state', 'offered', 'offer', f, 'courier', c)
  redis.call('HSET', P .. ':f:' .. f, 'order', o, 'courier', c, 'state', 'open',
    'expires', expires, 'created', now)
  redis.call('PEXPIRE', P .. ':f:' .. f, OFFER_TTL_MS)
  if pending then
    pending.orders[#pending.orders + 1] = o
    pending.fexp[#pending.fexp + 1] = expires
    pending.fexp[#pending.fexp + 1] = f
    local q = pending.q[region]
    if not q then q = {}; pending.q[region] = q end
    q[#q + 1] = o
    return
  end
  redis.call('SREM', P .. ':os:waiting', o)
  redis.call('SADD', P .. ':os:offered', o)
  redis.call('ZREM', P .. ':q:' .. region, o)
  redis.call('ZADD', P .. ':fexp', expires, f)
end
local function flush_offers(P, gs, pending)
  if #pending.gs > 0 then redis.call('HSET', gs, unpack(pending.gs)) end
  if #pending.orders == 0 then return end
  redis.call('SREM', P .. ':os:waiting', unpack(pending.orders))
  redis.call('SADD', P .. ':os:offered', unpack(pending.orders))
  for region, q in pairs(pending.q) do redis.call('ZREM', P .. ':q:' .. region, unpack(q)) end
  redis.call('ZADD', P .. ':fexp', unpack(pending.fexp))
end
local function requeue(P, id, now)
  local region = redis.call('HGET', P .. ':o:' .. id, 'region')
  redis.call('ZADD', P .. ':q:' .. region, now, id)
  redis.call('SADD', P .. ':regions', region)
end
