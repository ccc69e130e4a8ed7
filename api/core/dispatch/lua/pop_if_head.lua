-- Drop the outbox head only if it is still the row just relayed (another process may
-- have). KEYS: outbox; ARGV: row.
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) return 1 end
return 0
