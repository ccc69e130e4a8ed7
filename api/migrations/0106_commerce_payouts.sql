-- The earnings ledger (double entry, integer cents), bank accounts and payouts.
-- Rules and account names: api/commerce/payouts/ledger.py.
CREATE TABLE IF NOT EXISTS ledger_transactions (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('order_paid', 'order_delivered',
                    'order_refunded', 'payout', 'payout_sent', 'payout_failed')),
    ref         text        NOT NULL,
    order_id    uuid        REFERENCES orders (id),
    payout_id   uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, ref)  -- an event posted twice is posted once
);
CREATE INDEX IF NOT EXISTS ledger_transactions_order ON ledger_transactions (order_id)
    WHERE order_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS ledger_entries (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint      NOT NULL REFERENCES ledger_transactions (id),
    account         text        NOT NULL,
    amount_cents    bigint      NOT NULL CHECK (amount_cents <> 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ledger_entries_account ON ledger_entries (account, created_at);
CREATE INDEX IF NOT EXISTS ledger_entries_transaction ON ledger_entries (transaction_id);

-- Double entry, enforced: at commit every transaction's entries sum to zero.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT coalesce(sum(amount_cents), 0) FROM ledger_entries
        WHERE transaction_id = NEW.transaction_id) <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- Append-only: a mistake is corrected by a new transaction, never by editing one.
CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS ledger_entries_append_only ON ledger_entries;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- A payee's bank account as the processor tokenised it: the number itself is never stored.
CREATE TABLE IF NOT EXISTS bank_accounts (
    user_id      text PRIMARY KEY,
    account      text        NOT NULL,  -- the ledger account paid out: chef:<id>, courier:<id>
    token        text        NOT NULL,
    last4        text        NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    holder_name  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS payout_runs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    week          date        NOT NULL UNIQUE,  -- its Monday: one run per week
    cutoff        timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);

CREATE TABLE IF NOT EXISTS payouts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id          uuid        REFERENCES payout_runs (id),
    account         text        NOT NULL,
    user_id         text        NOT NULL,
    amount_cents    bigint      NOT NULL CHECK (amount_cents > 0),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'paid', 'failed')),
    bank_token      text        NOT NULL,
    last4           text        NOT NULL,
    provider_ref    text,
    failure_reason  text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, account)
);
CREATE INDEX IF NOT EXISTS payouts_account ON payouts (account, created_at DESC);
