-- Remove one outbox row (its event was published). KEYS: outbox; ARGV: row.
return redis.call('LREM', KEYS[1], 1, ARGV[1])
