-- A round's inputs in one reply: the region's due orders (queue entry <= now, at most
-- `limit`, as ZRANGEBYSCORE ... LIMIT 0 limit) that are still waiting, each with the fields
-- named (read with one HMGET) and the couriers that declined it.
-- ARGV: P, region, now, limit, field names... Returns
-- cjson [number due, [[order id, [declined...], field, value, field, value...], ...]]
-- (an empty array encodes as {}; a field the order lacks is left out).
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. ':q:' .. ARGV[2], '-inf', ARGV[3], 'LIMIT', 0,
  tonumber(ARGV[4]))
local fields = {'state'}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local rows = {}
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', P .. ':o:' .. id, unpack(fields))
  if v[1] == 'waiting' then
    local row = {id, redis.call('SMEMBERS', P .. ':dec:' .. id)}
    for j = 2, #fields do
      if v[j] then row[#row + 1] = fields[j]; row[#row + 1] = v[j] end
    end
    rows[#rows + 1] = row
  end
end
return cjson.encode({#ids, rows})
