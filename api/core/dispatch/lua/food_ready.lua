-- The chef marked the food ready. ARGV: P, order, at, due. The order's ready time becomes the
-- real one (`at`: the round's costs use it); a waiting order whose queue entry is later than
-- `due` is due then instead (`dispatch.lifecycle.entry_when_food_ready_ms`: only ever brought
-- forward). Returns the courier to tell (an accepted, not yet collected order), '' when nobody
-- is on the way, false for no order.
local P, o, at, due = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local okey = P .. ':o:' .. o
local od = redis.call('HMGET', okey, 'state', 'courier', 'enter_ms', 'region')
if not od[1] then return false end
redis.call('HSET', okey, 'food_ready_ms', at, 'ready_ms', at)
if od[1] == 'waiting' then
  redis.call('ZADD', P .. ':q:' .. od[4], 'XX', 'LT', due, o)
  if tonumber(od[3] or due) > due then redis.call('HSET', okey, 'enter_ms', ARGV[4]) end
end
if od[1] == 'assigned' and od[2] then return od[2] end
return ''
