-- A courier the dispatch state does not know at all (no hash: not even 'offline', which only
-- the courier itself sets) sent a fix after a rebuild: it is working, so it is idle again,
-- with the vehicle on file if any. 1 if it was set idle, 0 if the courier is known.
-- ARGV: P, geo_status, courier, now
local P, gs, c, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ckey = P .. ':c:' .. c
if redis.call('EXISTS', ckey) == 1 then return 0 end
set_courier(P, gs, c, 'idle', now)
redis.call('HSET', ckey, 'offer', '', 'order', '')
local vehicle = redis.call('HGET', P .. ':veh', c)
if vehicle then redis.call('HSET', ckey, 'vehicle', vehicle) end
return 1
