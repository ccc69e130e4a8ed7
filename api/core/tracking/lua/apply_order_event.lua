-- Applies a mapping only if the stream sequence is newer than the stored one for that stream;
-- the order's view key then expires ttl_s after its latest change.
-- KEYS[1] = the order's key; ARGV: sequence field, sequence, ttl_s, unheard field, then
-- field/value pairs. The unheard field ('' when nobody listens) marks an applied event whose
-- listeners have not yet confirmed it (`OrdersView.apply` deletes it once they did).
-- Returns 1: applied now; 2: applied before, but its listeners never confirmed it; 0: applied
-- and heard before, or older.
local key, seq_field, seq, unheard = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[4]
local last = tonumber(redis.call('HGET', key, seq_field))
if last and last >= seq then
  if unheard ~= '' and redis.call('HEXISTS', key, unheard) == 1 then return 2 end
  return 0
end
for i = 5, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', key, seq_field, ARGV[2])
if unheard ~= '' then redis.call('HSET', key, unheard, '1') end
redis.call('EXPIRE', key, ARGV[3])
return 1
