-- The claims of one round's offers (checks and effects; used alone and batched).
-- claim_idle: an idle courier for a waiting order it has not declined.
-- claim_stacked: a second (third...) order for a courier heading to a chef (dispatch.stacking
-- decided it against the held orders `held_csv`, sorted, comma-separated; refused if they
-- changed since). The courier keeps its state; it holds at most one open offer at a time,
-- like everyone. Both return 'ok' or the refusal (courier_busy, order_taken,
-- declined_before, stack_full, courier_changed).
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
