-- An order enters dispatch (waiting, in its region's queue from enter_ms); 0 if it already
-- did (redelivered event). ARGV: P, order, now, enter_ms, region, then field/value pairs.
local P, o = ARGV[1], ARGV[2]
local okey = P .. ':o:' .. o
if redis.call('EXISTS', okey) == 1 then return 0 end
for i = 6, #ARGV, 2 do redis.call('HSET', okey, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', okey, 'state', 'waiting', 'region', ARGV[5], 'enter_ms', ARGV[4],
  'created_ms', ARGV[3])
redis.call('SADD', P .. ':os:waiting', o)
redis.call('ZADD', P .. ':q:' .. ARGV[5], ARGV[4], o)
redis.call('SADD', P .. ':regions', ARGV[5])
return 1
