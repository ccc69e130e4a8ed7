-- One region's fresh members with a wanted status, inside a lat/lng box, in one call.
-- KEYS[1] = the region's last-seen set; ARGV: position-key prefix, status hash, min ts,
-- lat_lo, lat_hi, lng_lo, lng_hi, attribute hash prefix ('' for none), attribute field,
-- attribute hash ('' for none), wanted statuses... Returns seven strings: ids (\n), lats,
-- lngs, ts (comma-separated, as stored), statuses (\n), the attribute (\n) and the live
-- cells (\n, as the position hash holds them), so a 10,000-courier reply is seven bulk
-- strings rather than 70,000. The attribute is read with one HMGET of the attribute hash per
-- HMGET_CHUNK members when one is given (member -> value), else (and for members missing
-- from it) with HGET <prefix><id> <field> per member.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')
local lat_lo, lat_hi = tonumber(ARGV[4]), tonumber(ARGV[5])
local lng_lo, lng_hi = tonumber(ARGV[6]), tonumber(ARGV[7])
local want = {}
local attr_prefix, attr_field, attr_hash = ARGV[8], ARGV[9], ARGV[10]
for s = 11, #ARGV do want[ARGV[s]] = true end
local o_id, o_lat, o_lng, o_ts, o_st, o_at, o_cell = {}, {}, {}, {}, {}, {}, {}
local n, pre = 0, ARGV[1]
for s = 1, #ids, HMGET_CHUNK do
  local chunk = {}
  for t = s, math.min(s + HMGET_CHUNK - 1, #ids) do chunk[#chunk + 1] = ids[t] end
  local sts = redis.call('HMGET', ARGV[2], unpack(chunk))
  local ats = false
  if attr_hash ~= '' then ats = redis.call('HMGET', attr_hash, unpack(chunk)) end
  for t = 1, #chunk do
    local st = sts[t]
    if st and want[st] then
      local p = redis.call('HMGET', pre .. chunk[t], 'lat', 'lng', 'ts', 'cell')
      local la, ln = tonumber(p[1]), tonumber(p[2])
      if la and ln and la >= lat_lo and la <= lat_hi
          and ln >= lng_lo and ln <= lng_hi then
        n = n + 1
        o_id[n], o_lat[n], o_lng[n], o_ts[n], o_st[n] = chunk[t], p[1], p[2], p[3], st
        o_cell[n] = p[4] or ''
        local a = ats and ats[t]
        if not a then
          if attr_prefix ~= '' then
            a = redis.call('HGET', attr_prefix .. chunk[t], attr_field) or ''
          else
            a = ''
          end
        end
        o_at[n] = a
      end
    end
  end
end
return {table.concat(o_id, '\n'), table.concat(o_lat, ','), table.concat(o_lng, ','),
  table.concat(o_ts, ','), table.concat(o_st, '\n'), table.concat(o_at, '\n'),
  table.concat(o_cell, '\n')}
