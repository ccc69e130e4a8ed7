-- One stacked claim. ARGV: P, geo_status, courier, order, offer, now, expires, max_stack,
-- held (sorted, comma-separated)
return claim_stacked(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9])
