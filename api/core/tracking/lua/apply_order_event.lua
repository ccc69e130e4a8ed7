-- Applies a mapping only if the stream sequence is newer than the stored one for that stream;
-- the order's view key then expires ttl_s after its latest change.
-- KEYS[1] = the order's key; ARGV: sequence field, sequence, ttl_s, then field/value pairs.
local key, seq_field, seq = KEYS[1], ARGV[1], tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', key, seq_field))
if last and last >= seq then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', key, seq_field, ARGV[2])
redis.call('EXPIRE', key, ARGV[3])
return 1
