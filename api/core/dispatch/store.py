"""Dispatch state in Redis: couriers, orders, offers and region queues, changed only by Lua.

Every transition is one script, so it is atomic across any number of core processes: a
courier is claimed (idle → offered) in the same step that marks its order offered, which is
why no courier ever holds two open offers and no order ever has two accepted couriers.

Keys (P = ``<ns>:d``): ``P:c:<courier>`` courier hash, ``P:o:<order>`` order hash,
``P:f:<offer>`` offer hash, ``P:q:<region>`` queue (order → entry ms), ``P:regions``,
``P:fexp`` open offers by expiry, ``P:dec:<order>`` couriers that declined it,
``P:os:<state>`` orders by state (fleet listing), ``P:lease:<region>`` round leases,
``P:cs:<courier>`` orders a courier holds (more than one when stacked), ``P:veh`` each
courier's vehicle (courier -> vehicle, the courier hash's ``vehicle`` kept in a hash a round
reads with one HMGET per 4,000 couriers), ``P:outbox``
dispatch.* events not yet known to be published: a transition's script appends its event
there in the same atomic step, the publisher removes it once JetStream has acked it, and the
relay publishes whatever is left (a crash or NATS outage in between).
Scripts derive keys from the prefix, which is fine on one Redis; a Redis Cluster deployment
would pass them as KEYS with a region hash tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis

from dispatch.lifecycle import CourierState, OrderDispatchState

_LIB = """
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
-- and its open offer: nothing -> idle (or offered), any picked up -> delivering, else
-- to_pickup. Keeps 'order' (the first held order, for single-order clients) current.
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
    if ost == 'picked_up' or ost == 'delivering' then st = 'delivering' end
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
  redis.call('PEXPIRE', P .. ':f:' .. f, 86400000)
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
"""

# ARGV: P, geo_status, order_id, now, enter_ms, region, then field/value pairs.
_ENQUEUE = _LIB + """
local P, okey = ARGV[1], ARGV[1] .. ':o:' .. ARGV[3]
if redis.call('EXISTS', okey) == 1 then return 0 end
for i = 7, #ARGV, 2 do redis.call('HSET', okey, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', okey, 'state', 'waiting', 'region', ARGV[6], 'enter_ms', ARGV[5],
  'created_ms', ARGV[4])
redis.call('SADD', P .. ':os:waiting', ARGV[3])
redis.call('ZADD', P .. ':q:' .. ARGV[6], ARGV[5], ARGV[3])
redis.call('SADD', P .. ':regions', ARGV[6])
return 1
"""

# The claims of one round's offers (checks and effects; used alone and batched).
# claim_idle: an idle courier for a waiting order it has not declined.
# claim_stacked: a second (third...) order for a courier heading to a chef (dispatch.stacking
# decided it against the held orders `held_csv`, sorted, comma-separated; refused if they
# changed since). The courier keeps its state; it holds at most one open offer at a time,
# like everyone. Both return 'ok' or the refusal.
_CLAIMS = """
local function claim_idle(P, gs, c, o, f, now, expires, pending)
  local ckey = P .. ':c:' .. c
  if redis.call('HGET', ckey, 'state') ~= 'idle' then return 'courier_busy' end
  local od = redis.call('HMGET', P .. ':o:' .. o, 'state', 'region')
  if od[1] ~= 'waiting' then return 'order_taken' end
  if redis.call('SISMEMBER', P .. ':dec:' .. o, c) == 1 then return 'declined_before' end
  -- set_courier(P, gs, c, 'offered', now) and the offer, in one HSET of the courier hash
  -- (the status hash's field in one HSET per batch: no claim reads it)
  redis.call('HSET', ckey, 'state', 'offered', 'updated', now, 'offer', f, 'order', o)
  if pending then
    pending.gs[#pending.gs + 1] = c
    pending.gs[#pending.gs + 1] = 'offered'
  else
    redis.call('HSET', gs, c, 'offered')
  end
  open_offer(P, c, o, f, now, expires, od[2], pending)
  return 'ok'
end
local function claim_stacked(P, gs, c, o, f, now, expires, max_stack, held_csv, pending)
  local ckey = P .. ':c:' .. c
  if redis.call('HGET', ckey, 'state') ~= 'to_pickup' then return 'courier_busy' end
  if (redis.call('HGET', ckey, 'offer') or '') ~= '' then return 'courier_busy' end
  local held = redis.call('SMEMBERS', P .. ':cs:' .. c)
  if #held + 1 > tonumber(max_stack) then return 'stack_full' end
  table.sort(held)
  if table.concat(held, ',') ~= held_csv then return 'courier_changed' end
  for _, h in ipairs(held) do
    if redis.call('HGET', P .. ':o:' .. h, 'state') ~= 'assigned' then
      return 'courier_changed'
    end
  end
  local od = redis.call('HMGET', P .. ':o:' .. o, 'state', 'region')
  if od[1] ~= 'waiting' then return 'order_taken' end
  if redis.call('SISMEMBER', P .. ':dec:' .. o, c) == 1 then return 'declined_before' end
  redis.call('HSET', ckey, 'offer', f, 'updated', now)
  open_offer(P, c, o, f, now, expires, od[2], pending)
  return 'ok'
end
"""

# ARGV: P, geo_status, courier, order, offer, now, expires
_OFFER = _LIB + _CLAIMS + """
return claim_idle(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"""

# ARGV: P, geo_status, courier, order, offer, now, expires, max_stack, held
_OFFER_STACKED = _LIB + _CLAIMS + """
return claim_stacked(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9])
"""

# All of a round's claims in one call, in order, each with exactly the checks and effects of
# `_OFFER` / `_OFFER_STACKED` (a claim sees the effects of the ones before it, as it did when
# they were separate scripts in one pipeline; the batch as a whole is atomic too). The
# offers' state-set, queue, expiry-index and courier-status updates are applied once at the
# end of the batch (`flush_offers`; no claim reads those keys, so every check and the end
# state are the same): 7 Redis calls per idle claim.
# ARGV: P, geo_status, now, expires, number of claims, then six newline-separated lists, one
# entry per claim: kinds ('i' idle, 's' stacked), couriers, orders, offers, max_stack, held
# (sorted, comma-separated). A few long arguments rather than 6 per claim: redis-py encodes
# every argument in Python. Returns the results comma-separated, in order.
_OFFER_MANY = _LIB + _CLAIMS + """
local P, gs, now, expires, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local function split(s)
  local out = {}
  for part in (s .. '\\n'):gmatch('([^\\n]*)\\n') do out[#out + 1] = part end
  return out
end
local kind, cs, ords, fs, ms, hs = split(ARGV[6]), split(ARGV[7]), split(ARGV[8]),
  split(ARGV[9]), split(ARGV[10]), split(ARGV[11])
if #kind ~= n or #cs ~= n or #ords ~= n or #fs ~= n or #ms ~= n or #hs ~= n then
  return redis.error_reply('offer_many: malformed claims')
end
local out = {}
local pending = {orders = {}, fexp = {}, q = {}, gs = {}}
for i = 1, n do
  if kind[i] == 's' then
    out[i] = claim_stacked(P, gs, cs[i], ords[i], fs[i], now, expires, ms[i], hs[i], pending)
  else
    out[i] = claim_idle(P, gs, cs[i], ords[i], fs[i], now, expires, pending)
  end
end
flush_offers(P, gs, pending)
return table.concat(out, ',')
"""

# A round's inputs in one reply: the region's due orders (queue entry <= now, at most
# `limit`, as ZRANGEBYSCORE ... LIMIT 0 limit) that are still waiting, each with its whole
# hash (or only the fields named, read with one HMGET) and the couriers that declined it.
# ARGV: P, region, now, limit, field names... (none: the whole hash). Returns
# cjson [number due, [[order id, [declined...], field, value, field, value...], ...]]
# (an empty array encodes as {}; a field the order lacks is left out, as HGETALL does).
_ROUND_ORDERS = """
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. ':q:' .. ARGV[2], '-inf', ARGV[3], 'LIMIT', 0,
  tonumber(ARGV[4]))
local fields = {'state'}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local rows = {}
for _, id in ipairs(ids) do
  if #fields > 1 then
    local v = redis.call('HMGET', P .. ':o:' .. id, unpack(fields))
    if v[1] == 'waiting' then
      local row = {id, redis.call('SMEMBERS', P .. ':dec:' .. id)}
      for j = 2, #fields do
        if v[j] then row[#row + 1] = fields[j]; row[#row + 1] = v[j] end
      end
      rows[#rows + 1] = row
    end
  else
    local h = redis.call('HGETALL', P .. ':o:' .. id)
    local st
    for j = 1, #h, 2 do if h[j] == 'state' then st = h[j + 1] end end
    if st == 'waiting' then
      local row = {id, redis.call('SMEMBERS', P .. ':dec:' .. id)}
      for j = 1, #h do row[#row + 1] = h[j] end
      rows[#rows + 1] = row
    end
  end
end
return cjson.encode({#ids, rows})
"""

# Stacking inputs in one reply: of the couriers in ARGV[3..] (heading to a chef), those with
# no open offer, 0 < held orders < max_stack and every held order 'assigned', with their
# vehicle, held orders and those orders' hashes. ARGV: P, max_stack, courier ids...
# Returns cjson [[courier, vehicle, [held...], [[field, value...] per held order]], ...].
_STACK_INPUTS = """
local P, max_stack = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local c = ARGV[i]
  local info = redis.call('HMGET', P .. ':c:' .. c, 'offer', 'vehicle')
  if (not info[1]) or info[1] == '' then
    local held = redis.call('SMEMBERS', P .. ':cs:' .. c)
    if #held > 0 and #held < max_stack then
      local rows, ok = {}, true
      for _, h in ipairs(held) do
        local r = redis.call('HGETALL', P .. ':o:' .. h)
        local st
        for j = 1, #r, 2 do if r[j] == 'state' then st = r[j + 1] end end
        if st ~= 'assigned' then ok = false break end
        rows[#rows + 1] = r
      end
      if ok then out[#out + 1] = {c, info[2] or '', held, rows} end
    end
  end
end
return cjson.encode(out)
"""

# ARGV: P, geo_status, offer, action (accept|decline|expire), caller courier or '', now
_RESOLVE = _LIB + """
local P, gs, f, action, caller, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local fkey = P .. ':f:' .. f
local off = redis.call('HMGET', fkey, 'order', 'courier', 'state', 'expires')
if not off[1] then return {'no_offer'} end
if caller ~= '' and caller ~= off[2] then return {'no_offer'} end
if off[3] ~= 'open' then return {'not_open', off[3]} end
if action == 'expire' and tonumber(now) < tonumber(off[4]) then return {'not_due'} end
if action == 'accept' and tonumber(now) > tonumber(off[4]) then action = 'expire' end
local o, c = off[1], off[2]
local ckey, okey = P .. ':c:' .. c, P .. ':o:' .. o
redis.call('ZREM', P .. ':fexp', f)
if action == 'accept' then
  redis.call('HSET', fkey, 'state', 'accepted')
  redis.call('HSET', ckey, 'offer', '')
  redis.call('SADD', P .. ':cs:' .. c, o)
  move_order(P, o, 'offered', 'assigned')
  redis.call('HSET', okey, 'offer', '', 'courier', c, 'assigned_ms', now)
  settle_courier(P, gs, c, now)
  return {'accepted', o, c}
end
local result = (action == 'decline') and 'declined' or 'expired'
redis.call('HSET', fkey, 'state', result)
if redis.call('HGET', ckey, 'offer') == f then
  redis.call('HSET', ckey, 'offer', '')
  settle_courier(P, gs, c, now)
end
if redis.call('HGET', okey, 'offer') == f then
  move_order(P, o, 'offered', 'waiting')
  redis.call('HSET', okey, 'offer', '', 'courier', '')
  redis.call('SADD', P .. ':dec:' .. o, c)
  redis.call('PEXPIRE', P .. ':dec:' .. o, 86400000)
  requeue(P, o, now)
end
return {result, o, c}
"""

# Force-assign by a fleet manager: same claim rule (courier idle), order waiting or offered.
# ARGV: P, geo_status, order, courier, now
_FORCE = _LIB + """
local P, gs, o, c, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local okey = P .. ':o:' .. o
local st = redis.call('HGET', okey, 'state')
if not st then return {'no_order'} end
if st ~= 'waiting' and st ~= 'offered' then return {'order_state', st} end
if redis.call('HGET', P .. ':c:' .. c, 'state') ~= 'idle' then return {'courier_busy'} end
if st == 'offered' then
  local f = redis.call('HGET', okey, 'offer')
  local prev = redis.call('HGET', okey, 'courier')
  redis.call('HSET', P .. ':f:' .. f, 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', f)
  redis.call('HSET', P .. ':c:' .. prev, 'offer', '')
  settle_courier(P, gs, prev, now)
end
local region = redis.call('HGET', okey, 'region')
redis.call('ZREM', P .. ':q:' .. region, o)
redis.call('SADD', P .. ':cs:' .. c, o)
redis.call('HSET', P .. ':c:' .. c, 'offer', '', 'order', o)
move_order(P, o, st, 'assigned')
redis.call('HSET', okey, 'offer', '', 'courier', c, 'assigned_ms', now)
settle_courier(P, gs, c, now)
return {'assigned', o, c}
"""

# ARGV: P, geo_status, order, now. Assigned (not yet picked up) → back to waiting.
_UNASSIGN = _LIB + """
local P, gs, o, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local okey = P .. ':o:' .. o
local st = redis.call('HGET', okey, 'state')
if not st then return {'no_order'} end
if st ~= 'assigned' and st ~= 'offered' then return {'order_state', st} end
local c = redis.call('HGET', okey, 'courier')
if st == 'offered' then
  local f = redis.call('HGET', okey, 'offer')
  redis.call('HSET', P .. ':f:' .. f, 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', f)
  if redis.call('HGET', P .. ':c:' .. c, 'offer') == f then
    redis.call('HSET', P .. ':c:' .. c, 'offer', '')
  end
end
redis.call('SREM', P .. ':cs:' .. c, o)
move_order(P, o, st, 'waiting')
redis.call('HSET', okey, 'offer', '', 'courier', '')
settle_courier(P, gs, c, now)
requeue(P, o, now)
return {'unassigned', o, c}
"""

# The chef marked the food ready. ARGV: P, order, at. Returns the courier to tell (an
# accepted, not yet collected order), '' when nobody is on the way, false for no order.
_FOOD_READY = """
local P, o, at = ARGV[1], ARGV[2], ARGV[3]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier')
if not od[1] then return false end
redis.call('HSET', okey, 'food_ready_ms', at, 'ready_ms', at)
if od[1] == 'assigned' and od[2] then return od[2] end
return ''
"""

# A courier reports progress on its order. ARGV: P, geo_status, order, courier, new, now
_PROGRESS = _LIB + """
local P, gs, o, c, new, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier')
if not od[1] or od[2] ~= c then return {'no_order'} end
local allowed = {assigned = {picked_up = true}, picked_up = {delivering = true, delivered = true},
                 delivering = {delivered = true}}
if not (allowed[od[1]] and allowed[od[1]][new]) then return {'bad_transition', od[1]} end
move_order(P, o, od[1], new)
redis.call('HSET', okey, new .. '_ms', now)
if new == 'delivered' then
  redis.call('SREM', P .. ':os:delivered', o)
  redis.call('PEXPIRE', okey, 86400000)
  redis.call('SREM', P .. ':cs:' .. c, o)
end
settle_courier(P, gs, c, now)
return {new, o, c}
"""

# Order cancelled upstream: release whatever it holds. ARGV: P, geo_status, order, now
_CANCEL = _LIB + """
local P, gs, o, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier', 'offer', 'region')
if not od[1] then
  redis.call('HSET', okey, 'state', 'cancelled')
  redis.call('PEXPIRE', okey, 86400000)
  return {'cancelled'}
end
if od[1] == 'cancelled' or od[1] == 'delivered' then return {'noop', od[1]} end
redis.call('ZREM', P .. ':q:' .. od[4], o)
if od[1] == 'offered' then
  redis.call('HSET', P .. ':f:' .. od[3], 'state', 'revoked')
  redis.call('ZREM', P .. ':fexp', od[3])
end
redis.call('SREM', P .. ':os:' .. od[1], o)
redis.call('HSET', okey, 'state', 'cancelled', 'courier', '', 'offer', '')
if od[2] and od[2] ~= '' and od[1] ~= 'waiting' then
  local ckey = P .. ':c:' .. od[2]
  if od[1] == 'offered' and redis.call('HGET', ckey, 'offer') == od[3] then
    redis.call('HSET', ckey, 'offer', '')
  end
  redis.call('SREM', P .. ':cs:' .. od[2], o)
  settle_courier(P, gs, od[2], now)
end
redis.call('PEXPIRE', okey, 86400000)
return {'cancelled', o, od[2] or ''}
"""

# ARGV: P, geo_status, courier, online (1/0), vehicle, now
_AVAILABILITY = _LIB + """
local P, gs, c, online, vehicle, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ckey = P .. ':c:' .. c
local st = redis.call('HGET', ckey, 'state') or 'offline'
if online == '1' then
  if st == 'offline' then set_courier(P, gs, c, 'idle', now) end
  if vehicle ~= '' then
    redis.call('HSET', ckey, 'vehicle', vehicle)
    redis.call('HSET', P .. ':veh', c, vehicle)
  end
  return {redis.call('HGET', ckey, 'state')}
end
if st ~= 'idle' and st ~= 'offline' then return {'busy', st} end
set_courier(P, gs, c, 'offline', now)
return {'offline'}
"""

# Lease for a region's rounds. ARGV: key, holder, ttl_ms. Returns 1 if held by `holder`.
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""

# Drop the outbox head only if it is still the row just relayed (another process may have).
_DROP_ROW = """
return redis.call('LREM', KEYS[1], 1, ARGV[1])
"""

_POP_IF_HEAD = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) return 1 end
return 0
"""

def _with_outbox(script: str) -> str:
    """`script` (a transition) that also appends its event to the outbox ``P:outbox`` in the
    same atomic step: ARGV gains two trailing values, the outcome the event describes
    (``result:order:courier``, the script's reply) and the outbox row ('' for none). The
    scripts wrapped never read ``#ARGV``."""
    return f"""local function transition()
{script}
end
local r = transition()
local row = ARGV[#ARGV]
if row ~= '' and (tostring(r[1]) .. ':' .. tostring(r[2] or '') .. ':' .. tostring(r[3] or ''))
    == ARGV[#ARGV - 1] then
  redis.call('RPUSH', ARGV[1] .. ':outbox', row)
end
return r
"""


_DROP_REGION_IF_EMPTY = """
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) return 1 end
return 0
"""


CLAIMS_PER_CALL = 500
"""Claims per `offer_many` script call: a script holds Redis for its whole run (~10-20 ms per
500 claims here), so a round's 2,000 claims go as four calls in one pipeline rather than one
call holding every other client for ~4 times that. (At most ~4,000: the batch's offers are
`unpack`ed into single commands at its end, and Lua's stack limit is 8,000 values.)"""


class OfferClaim(msgspec.Struct, frozen=True, kw_only=True):
    """One offer of a round: an idle courier (``held`` None) or a courier heading to a chef
    that holds exactly ``held`` (stacking, up to ``max_stack`` orders)."""

    courier_id: str
    order_id: str
    held: tuple[str, ...] | None = None
    max_stack: int = 1


class Transition(msgspec.Struct, frozen=True):
    """Outcome of a script: ``result`` ("ok", "accepted", a refusal reason, ...) and ids."""

    result: str
    order_id: str = ""
    courier_id: str = ""
    detail: str = ""


def _transition(raw: Any) -> Transition:
    items = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
    items += [""] * (4 - len(items))
    if items[0] in ("not_open", "bad_transition", "order_state", "busy"):
        return Transition(items[0], detail=items[1])
    return Transition(items[0], items[1], items[2], items[3])


def _str_map(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def _hgetall(redis: aioredis.Redis, key: str) -> dict[bytes, bytes]:
    raw: Any = await redis.hgetall(key)
    return dict(raw)


def offer_ids(n: int) -> list[str]:
    """`n` random offer ids (32 hex digits, like ``uuid4().hex``; one system call)."""
    raw = os.urandom(16 * n).hex()
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DispatchStore:
    def __init__(self, redis: aioredis.Redis, namespace: str, geo_status_key: str) -> None:
        self.redis = redis
        self.p = f"{namespace}:d"
        self.geo_status = geo_status_key
        self.vehicles_key = f"{self.p}:veh"
        """Courier -> vehicle, written with the courier hash's field (`set_availability`)."""
        r = redis.register_script
        self._enqueue = r(_ENQUEUE)
        self._offer = r(_OFFER)
        self._offer_stacked = r(_OFFER_STACKED)
        self._offer_many = r(_OFFER_MANY)
        self._round_orders = r(_ROUND_ORDERS)
        self._stack_inputs = r(_STACK_INPUTS)
        self._resolve = r(_with_outbox(_RESOLVE))
        self._force = r(_with_outbox(_FORCE))
        self._unassign = r(_with_outbox(_UNASSIGN))
        self._progress = r(_with_outbox(_PROGRESS))
        self._food_ready = r(_FOOD_READY)
        self._cancel = r(_CANCEL)
        self._availability = r(_AVAILABILITY)
        self._lease = r(_LEASE)
        self._drop_region = r(_DROP_REGION_IF_EMPTY)
        self._pop_if_head = r(_POP_IF_HEAD)
        self._drop_row = r(_DROP_ROW)

    # -- orders ----------------------------------------------------------------------------
    async def enqueue(self, order_id: str, *, region: str, enter_ms: int, now_ms: int,
                      fields: dict[str, str | int | float]) -> bool:
        args: list[str | int | float] = [self.p, self.geo_status, order_id, now_ms, enter_ms,
                                          region]
        for k, v in fields.items():
            args += [k, v]
        return bool(await self._enqueue(args=args))

    async def cancel(self, order_id: str, now_ms: int) -> Transition:
        return _transition(await self._cancel(args=[self.p, self.geo_status, order_id, now_ms]))

    async def food_ready(self, order_id: str, at_ms: int) -> str | None:
        """Record that the food is ready; the courier on its way to collect it, if any."""
        courier = await self._food_ready(args=[self.p, order_id, at_ms])
        return _s(courier) if courier else None  # nil (no order) and '' (nobody) alike

    async def order(self, order_id: str) -> dict[str, str] | None:
        raw = await _hgetall(self.redis, f"{self.p}:o:{order_id}")
        return _str_map(raw) if raw else None

    async def orders(self, order_ids: Sequence[str]) -> list[dict[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for oid in order_ids:
                pipe.hgetall(f"{self.p}:o:{oid}")
            raws = await pipe.execute()
        return [{**_str_map(r), "order_id": oid} for oid, r in zip(order_ids, raws, strict=True)
                if r]

    async def orders_in_state(self, state: OrderDispatchState, limit: int = 1000) -> list[str]:
        members = await self.redis.srandmember(f"{self.p}:os:{state.value}", limit)
        return sorted(_s(m) for m in members or [])

    async def due_orders(self, region: str, now_ms: int, limit: int) -> list[str]:
        ids = await self.redis.zrangebyscore(f"{self.p}:q:{region}", "-inf", now_ms,
                                             start=0, num=limit)
        return [_s(i) for i in ids]

    async def declined_by(self, order_ids: Sequence[str]) -> list[set[str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for oid in order_ids:
                pipe.smembers(f"{self.p}:dec:{oid}")
            raws = await pipe.execute()
        return [{_s(m) for m in r} for r in raws]

    async def regions(self) -> list[str]:
        return sorted(_s(r) for r in await self.redis.smembers(f"{self.p}:regions"))

    async def drop_region_if_empty(self, region: str) -> None:
        await self._drop_region(keys=[f"{self.p}:q:{region}", f"{self.p}:regions"],
                                args=[region])

    # -- offers ----------------------------------------------------------------------------
    async def offer(self, courier_id: str, order_id: str, *, now_ms: int,
                    expires_ms: int) -> tuple[str, str]:
        """Claim an idle courier for a waiting order; returns (result, offer_id)."""
        offer_id = uuid.uuid4().hex
        result = await self._offer(args=[self.p, self.geo_status, courier_id, order_id,
                                         offer_id, now_ms, expires_ms])
        return (result.decode() if isinstance(result, bytes) else str(result)), offer_id

    async def offer_stacked(self, courier_id: str, order_id: str, *, held: Sequence[str],
                            max_stack: int, now_ms: int, expires_ms: int) -> tuple[str, str]:
        """Offer one more order to a courier heading to a chef that holds exactly `held`
        (what the stacking decision was made on); returns (result, offer_id)."""
        offer_id = uuid.uuid4().hex
        result = await self._offer_stacked(args=[
            self.p, self.geo_status, courier_id, order_id, offer_id, now_ms, expires_ms,
            max_stack, ",".join(sorted(held))])
        return (result.decode() if isinstance(result, bytes) else str(result)), offer_id

    async def offer_many(self, claims: Sequence[OfferClaim], *, now_ms: int,
                         expires_ms: int) -> list[tuple[str, str]]:
        """`offer` / `offer_stacked` for a round's assignments, `CLAIMS_PER_CALL` per script
        call: each claim runs exactly the checks and effects of its own script, in order (so
        the guarantees are those of one call each; each call's batch is atomic as a whole
        too), and each call's results come back as one string. Returns (result, offer_id)
        per claim, in order (`offer_chunks`, collected)."""
        out: list[tuple[str, str]] = []
        async with contextlib.aclosing(self.offer_chunks(
                claims, now_ms=now_ms, expires_ms=expires_ms)) as chunks:
            async for part in chunks:
                out += part
        return out

    async def offer_chunks(self, claims: Sequence[OfferClaim], *, now_ms: int,
                           expires_ms: int, per_call: int | None = None,
                           ) -> AsyncGenerator[list[tuple[str, str]], None]:
        """`offer_many`, yielding each call's (result, offer_id) list, in claim order, as its
        reply arrives, so the caller can act on the first claims while Redis runs the next.

        When the claims are independent — no courier and no order in two claims, as in a
        round's assignment — the calls go out at once on separate connections: Redis may run
        them in any order, which cannot change a result (a claim reads only its courier's
        and its order's keys, its order's declines and its courier's held orders, and writes
        only its courier's and its order's keys and the offer; held orders are never
        waiting, so never claimed). Otherwise they go out in one pipeline, in order, and
        every result arrives at once."""
        per_call = per_call or CLAIMS_PER_CALL
        if not claims:
            return
        ids = offer_ids(len(claims))
        calls = [(start, self._offer_many_args(claims[start:start + per_call],
                                               ids[start:start + per_call], now_ms,
                                               expires_ms))
                 for start in range(0, len(claims), per_call)]
        independent = (len({c.courier_id for c in claims}) == len(claims)
                       == len({c.order_id for c in claims}))
        if len(calls) == 1 or not independent:
            async with self.redis.pipeline(transaction=False) as pipe:
                for _, args in calls:
                    await self._offer_many(args=args, client=pipe)
                replies = await pipe.execute()
            results = [r for reply in replies for r in _s(reply).split(",")]
            yield list(zip(results, ids, strict=True))
            return
        tasks = [asyncio.ensure_future(self._offer_many(args=args)) for _, args in calls]
        try:
            for (start, _), task in zip(calls, tasks, strict=True):
                results = _s(await task).split(",")
                yield list(zip(results, ids[start:start + per_call], strict=True))
        finally:  # a claim that went out stays made: let every call finish
            await asyncio.gather(*tasks, return_exceptions=True)

    def _offer_many_args(self, part: Sequence[OfferClaim], ids: Sequence[str], now_ms: int,
                         expires_ms: int) -> list[str | int]:
        columns = (
            ["i" if c.held is None else "s" for c in part],
            [c.courier_id for c in part],
            [c.order_id for c in part],
            ids,
            ["" if c.held is None else str(c.max_stack) for c in part],
            ["" if c.held is None else ",".join(sorted(c.held)) for c in part],
        )
        args: list[str | int] = [self.p, self.geo_status, now_ms, expires_ms, len(part)]
        for col in columns:
            joined = "\n".join(col)
            if joined.count("\n") != len(part) - 1:
                raise ValueError("an id in an offer claim contains a newline")
            args.append(joined)
        return args

    async def round_orders(self, region: str, now_ms: int, limit: int,
                           fields: Sequence[str] = (),
                           ) -> tuple[int, list[dict[str, str]], list[set[str]]]:
        """A round's inputs in one call: how many orders of `region` are due (entered the
        queue by `now_ms`, at most `limit`, oldest first — `due_orders`), and of those the
        ones still waiting, as `orders` returns them (only `fields` of them, and order_id,
        when named), with the couriers that declined each (`declined_by`)."""
        n_due, rows = msgspec.json.decode(await self._round_orders(
            args=[self.p, region, now_ms, limit, *fields]))
        orders: list[dict[str, str]] = []
        declined: list[set[str]] = []
        for row in rows or ():  # an empty Lua table encodes as {}
            flat = row[2:]
            orders.append({**dict(zip(flat[::2], flat[1::2], strict=True)),
                           "order_id": row[0]})
            declined.append(set(row[1]))
        return int(n_due), orders, declined

    async def stack_inputs(self, courier_ids: Sequence[str], max_stack: int,
                           ) -> dict[str, tuple[str, list[dict[str, str]]]]:
        """Of `courier_ids` (heading to a chef), those that may take one more order: no open
        offer, fewer than `max_stack` held orders (at least one), each held order still
        assigned. Courier → (vehicle, held orders as `orders` returns them, sorted by id),
        in the order of `courier_ids`; one call."""
        if not courier_ids:
            return {}
        raw = msgspec.json.decode(await self._stack_inputs(
            args=[self.p, max_stack, *courier_ids]))
        out: dict[str, tuple[str, list[dict[str, str]]]] = {}
        for cid, vehicle, held, rows in raw or ():
            held_rows = sorted(
                ({**dict(zip(r[::2], r[1::2], strict=True)), "order_id": h}
                 for h, r in zip(held, rows, strict=True)), key=lambda o: o["order_id"])
            out[cid] = (vehicle, held_rows)
        return out

    async def held_orders(self, courier_ids: Sequence[str]) -> list[list[str]]:
        """Orders each courier holds (assigned to it and not delivered), sorted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in courier_ids:
                pipe.smembers(f"{self.p}:cs:{cid}")
            raws = await pipe.execute()
        return [sorted(_s(m) for m in r) for r in raws]

    async def resolve(self, offer_id: str, action: str, *, courier_id: str = "",
                      now_ms: int, event_row: bytes = b"", order_id: str = "") -> Transition:
        """Accept, decline or expire an offer; `event_row` (for an accept of the offer of
        `order_id`) enters the outbox in the same step when that accept succeeds."""
        return _transition(await self._resolve(
            args=[self.p, self.geo_status, offer_id, action, courier_id, now_ms,
                  f"accepted:{order_id}:{courier_id}", event_row]))

    async def due_offers(self, now_ms: int, limit: int = 500) -> list[str]:
        ids = await self.redis.zrangebyscore(f"{self.p}:fexp", "-inf", now_ms, start=0,
                                             num=limit)
        return [_s(i) for i in ids]

    async def offer_info(self, offer_id: str) -> dict[str, str] | None:
        raw = await _hgetall(self.redis, f"{self.p}:f:{offer_id}")
        return _str_map(raw) if raw else None

    # -- couriers --------------------------------------------------------------------------
    async def courier(self, courier_id: str) -> dict[str, str]:
        raw = await _hgetall(self.redis, f"{self.p}:c:{courier_id}")
        return _str_map(raw) if raw else {"state": CourierState.OFFLINE.value}

    async def couriers(self, courier_ids: Sequence[str]) -> list[dict[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in courier_ids:
                pipe.hgetall(f"{self.p}:c:{cid}")
            raws = await pipe.execute()
        return [_str_map(r) for r in raws]

    async def set_availability(self, courier_id: str, *, online: bool, vehicle: str,
                               now_ms: int) -> Transition:
        return _transition(await self._availability(
            args=[self.p, self.geo_status, courier_id, "1" if online else "0", vehicle,
                  now_ms]))

    async def force_assign(self, order_id: str, courier_id: str, now_ms: int,
                           event_row: bytes = b"") -> Transition:
        return _transition(await self._force(
            args=[self.p, self.geo_status, order_id, courier_id, now_ms,
                  f"assigned:{order_id}:{courier_id}", event_row]))

    async def unassign(self, order_id: str, now_ms: int, event_row: bytes = b"",
                       courier_id: str = "") -> Transition:
        """Take an order back; `event_row` enters the outbox in the same step only if the
        order was unassigned from `courier_id` (the one the event names)."""
        return _transition(await self._unassign(args=[
            self.p, self.geo_status, order_id, now_ms, f"unassigned:{order_id}:{courier_id}",
            event_row]))

    async def progress(self, order_id: str, courier_id: str, new: OrderDispatchState,
                       now_ms: int, event_row: bytes = b"") -> Transition:
        """Move a held order on; `event_row` enters the outbox in the same step if it moved."""
        return _transition(await self._progress(
            args=[self.p, self.geo_status, order_id, courier_id, new.value, now_ms,
                  f"{new.value}:{order_id}:{courier_id}", event_row]))

    # -- outbox of dispatch.* events that could not be published ----------------------------
    async def park_event(self, row: bytes) -> None:
        await self.redis.rpush(f"{self.p}:outbox", row)

    async def drop_event(self, row: bytes) -> None:
        """Remove one outbox row (its event was published)."""
        await self._drop_row(keys=[f"{self.p}:outbox"], args=[row])

    async def outbox_head(self) -> bytes | None:
        raw: Any = await self.redis.lindex(f"{self.p}:outbox", 0)
        return None if raw is None else raw if isinstance(raw, bytes) else str(raw).encode()

    async def drop_outbox_head(self, row: bytes) -> None:
        await self._pop_if_head(keys=[f"{self.p}:outbox"], args=[row])

    async def outbox_size(self) -> int:
        return int(await self.redis.llen(f"{self.p}:outbox"))

    # -- leases ----------------------------------------------------------------------------
    async def hold_lease(self, region: str, holder: str, ttl_ms: int) -> bool:
        return bool(await self._lease(keys=[f"{self.p}:lease:{region}"], args=[holder, ttl_ms]))

    async def lease_holder(self, region: str) -> str | None:
        v = await self.redis.get(f"{self.p}:lease:{region}")
        return _s(v) if v else None
