-- An order's lines, payments and allocations are kept in the order's own
-- row, each a JSON array, instead of in three tables of their own (issue
-- 18). An order is always read whole and written whole (imported, then
-- changed by its cancellations), and a cancellation that touched the order
-- and its lines, payments and allocations changed four pages of four
-- B-trees, each written again to the write-ahead log and then to the
-- database file. In the order's row, it is one page.
--
-- Each array holds one array per line, payment or allocation, its fields
-- in this order (the order the store reads them in):
--   lines:       line number, SKU, quantity, amount (minor units), tax
--                (minor units), parent line or null, kind ('product' or
--                'discount'), the lines a discount applies to (a JSON array
--                as text), state ('active' or 'cancelled'), ERP line
--                reference or null;
--   payments:    position, id, method, authorized, deposited, voided,
--                refunded (minor units);
--   allocations: position, line number, warehouse, quantity, kind
--                ('existing' or 'expected'), state ('allocated' or
--                'released').
--
-- The three tables' names stay, as views of the arrays with the tables'
-- columns, for whoever reads the database with SQL (an operator, a copy
-- to PostgreSQL): they read as the tables did, and cannot be written.

-- Made as 0011 made the orders table: a new table, the rows copied in key
-- order (so its pages are filled), the old tables dropped, the new one
-- renamed (other tables' references name the table, so they hold).

CREATE TABLE orders_with_items (
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
    updated_at INTEGER NOT NULL,
    lines TEXT NOT NULL DEFAULT '[]' CHECK (json_type(lines) = 'array'),
    payments TEXT NOT NULL DEFAULT '[]' CHECK (json_type(payments) = 'array'),
    allocations TEXT NOT NULL DEFAULT '[]' CHECK (json_type(allocations) = 'array')
) STRICT, WITHOUT ROWID;
INSERT INTO orders_with_items (number, business_code, customer_number, website, status,
    order_date, currency, erp_order_number, approval_state, tracking, updated_at,
    lines, payments, allocations)
SELECT o.number, o.business_code, o.customer_number, o.website, o.status,
    o.order_date, o.currency, o.erp_order_number, o.approval_state, o.tracking, o.updated_at,
    (SELECT json_group_array(json_array(line_number, sku, quantity, amount_minor,
            tax_minor, parent_line, kind, applies_to, state, erp_line_ref))
        FROM (SELECT * FROM order_lines WHERE order_number = o.number
              ORDER BY line_number)),
    (SELECT json_group_array(json_array(position, id, method, authorized_minor,
            deposited_minor, voided_minor, refunded_minor))
        FROM (SELECT * FROM payments WHERE order_number = o.number ORDER BY position)),
    (SELECT json_group_array(json_array(position, line_number, warehouse, quantity,
            kind, state))
        FROM (SELECT * FROM allocations WHERE order_number = o.number ORDER BY position))
FROM orders AS o ORDER BY o.number;

DROP TABLE order_lines;
DROP TABLE payments;
DROP TABLE allocations;
DROP TABLE orders;
ALTER TABLE orders_with_items RENAME TO orders;
CREATE INDEX orders_customer ON orders (customer_number);

CREATE VIEW order_lines (order_number, line_number, sku, quantity, amount_minor,
    tax_minor, parent_line, kind, applies_to, state, erp_line_ref) AS
SELECT o.number, l.value ->> 0, l.value ->> 1, l.value ->> 2, l.value ->> 3,
    l.value ->> 4, l.value ->> 5, l.value ->> 6, l.value ->> 7, l.value ->> 8,
    l.value ->> 9
FROM orders AS o, json_each(o.lines) AS l;

CREATE VIEW payments (order_number, position, id, method, authorized_minor,
    deposited_minor, voided_minor, refunded_minor) AS
SELECT o.number, p.value ->> 0, p.value ->> 1, p.value ->> 2, p.value ->> 3,
    p.value ->> 4, p.value ->> 5, p.value ->> 6
FROM orders AS o, json_each(o.payments) AS p;

CREATE VIEW allocations (order_number, position, line_number, warehouse, quantity,
    kind, state) AS
SELECT o.number, a.value ->> 0, a.value ->> 1, a.value ->> 2, a.value ->> 3,
    a.value ->> 4, a.value ->> 5
FROM orders AS o, json_each(o.allocations) AS a;
