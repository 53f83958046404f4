-- An order and its lines, payments and allocations are each stored in the
-- B-tree of their primary key (issue 18). As ordinary tables keyed by text,
-- each had two B-trees: the rows by an internal row number, and the primary
-- key's index pointing into them. Every read of an order by its number went
-- down both, once for the order and once for each of its lines, payments
-- and allocations; a cancellation in a store larger than the page cache
-- read about twice the pages it needed, one file read each. Keyed by their
-- primary key, an order is one lookup and its lines, payments and
-- allocations one range each, the rows of one order side by side however
-- they were written. Same columns, rules and keys; the rows are copied.
--
-- SQLite's documented way to change how a table is stored: make the new
-- table, copy the rows, drop the old one and give the new one its name.
-- Other tables' references name the table, so they hold. The store applies
-- its migrations with foreign keys off (dropping the old orders would
-- otherwise delete every line, payment and allocation with them), each in
-- one transaction: a failure anywhere rolls all of it back.

CREATE TABLE orders_by_number (
    number TEXT PRIMARY KEY NOT NULL,
    business_code TEXT NOT NULL,
    customer_number TEXT NOT NULL,
    website TEXT NOT NULL,
    status TEXT NOT NULL,
    order_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    erp_order_number TEXT,
    approval_state TEXT,
    tracking TEXT,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO orders_by_number (number, business_code, customer_number, website, status,
    order_date, currency, erp_order_number, approval_state, tracking, updated_at)
SELECT number, business_code, customer_number, website, status,
    order_date, currency, erp_order_number, approval_state, tracking, updated_at
FROM orders ORDER BY number;
DROP TABLE orders;
ALTER TABLE orders_by_number RENAME TO orders;
CREATE INDEX orders_customer ON orders (customer_number);

CREATE TABLE order_lines_by_key (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    line_number INTEGER NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    parent_line INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('product', 'discount')),
    applies_to TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL CHECK (state IN ('active', 'cancelled')),
    erp_line_ref TEXT,
    PRIMARY KEY (order_number, line_number)
) STRICT, WITHOUT ROWID;
INSERT INTO order_lines_by_key (order_number, line_number, sku, quantity, amount_minor,
    tax_minor, parent_line, kind, applies_to, state, erp_line_ref)
SELECT order_number, line_number, sku, quantity, amount_minor,
    tax_minor, parent_line, kind, applies_to, state, erp_line_ref
FROM order_lines ORDER BY order_number, line_number;
DROP TABLE order_lines;
ALTER TABLE order_lines_by_key RENAME TO order_lines;

CREATE TABLE payments_by_key (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    method TEXT NOT NULL,
    authorized_minor INTEGER NOT NULL,
    deposited_minor INTEGER NOT NULL,
    voided_minor INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL,
    PRIMARY KEY (order_number, position)
) STRICT, WITHOUT ROWID;
INSERT INTO payments_by_key (order_number, position, id, method, authorized_minor,
    deposited_minor, voided_minor, refunded_minor)
SELECT order_number, position, id, method, authorized_minor,
    deposited_minor, voided_minor, refunded_minor
FROM payments ORDER BY order_number, position;
DROP TABLE payments;
ALTER TABLE payments_by_key RENAME TO payments;

CREATE TABLE allocations_by_key (
    order_number TEXT NOT NULL REFERENCES orders (number) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    line_number INTEGER NOT NULL,
    warehouse TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('existing', 'expected')),
    state TEXT NOT NULL CHECK (state IN ('allocated', 'released')),
    PRIMARY KEY (order_number, position)
) STRICT, WITHOUT ROWID;
INSERT INTO allocations_by_key (order_number, position, line_number, warehouse, quantity,
    kind, state)
SELECT order_number, position, line_number, warehouse, quantity, kind, state
FROM allocations ORDER BY order_number, position;
DROP TABLE allocations;
ALTER TABLE allocations_by_key RENAME TO allocations;
