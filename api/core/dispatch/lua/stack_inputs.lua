-- Stacking inputs in one reply: of the couriers in ARGV[3..] (heading to a chef), those with
-- no open offer, 0 < held orders < max_stack and every held order 'assigned', with their
-- vehicle, held orders and those orders' hashes. ARGV: P, max_stack, courier ids...
-- Returns cjson [[courier, vehicle, [held...], [[field, value...] per held order]], ...].
local P, max_stack = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local c = ARGV[i]
  local info = redis.call('HMGET', P .. ':c:' .. c, 'offer', 'vehicle')
  if (not info[1]) or info[1] == '' then
    local held = redis.call('SMEMBERS', P .. ':cs:' .. c)
    if #held > 0 and #held < max_stack then
      local rows, ok = {}, true
      for _, h in ipairs(held) do
        local r = redis.call('HGETALL', P .. ':o:' .. h)
        local st
        for j = 1, #r, 2 do if r[j] == 'state' then st = r[j + 1] end end
        if st ~= 'assigned' then ok = false break end
        rows[#rows + 1] = r
      end
      if ok then out[#out + 1] = {c, info[2] or '', held, rows} end
    end
  end
end
return cjson.encode(out)
