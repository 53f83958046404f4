//! Orders with their lines, payments, allocations, approval and tracking.

use sqlx::Row;
use time::Date;
use time::macros::format_description;

use super::db::{Db, Link, Tx, on};
use super::{Store, StoreError, StoredName, from_json, from_stored_name, now_ms, to_json};
use crate::domain::{
    Allocation, Approval, ApprovalState, Currency, Line, LineKind, Order, Payment, Tracking,
};

/// Whether `put_order` created the order or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOrder {
    /// It was new.
    Created,
    /// An order with that number existed and was replaced.
    Replaced,
}

/// An order in a list: its number, status, date and website.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    /// The order number.
    pub number: String,
    /// Its current status.
    pub status: String,
    /// The day it was placed, `YYYY-MM-DD`.
    pub order_date: String,
    /// The website it was placed on.
    pub website: String,
}

impl Store {
    /// Creates or replaces an order (API `PUT /v1/orders/{orderNumber}`).
    /// The order keeps its cancellations; its lines, payments and
    /// allocations are replaced by the given ones.
    pub async fn put_order(&self, order: &Order) -> Result<PutOrder, StoreError> {
        // On PostgreSQL, the order's row (its first write) serialises the
        // writes of one order, on every replica; others go side by side.
        let mut tx = self.write_rows().await?;
        if let Db::Postgres(tx) = &mut tx {
            // Two first writes of one new order: the second waits here,
            // then finds the first's row (and answers "replaced").
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(&order.number)
                .execute(&mut **tx)
                .await?;
        }
        let existed = on!(&mut tx, |tx| sqlx::query(
            "SELECT 1 FROM orders WHERE number = $1"
        )
        .bind(&order.number)
        .fetch_optional(&mut **tx)
        .await?
        .is_some());
        write_order(&mut tx, order).await?;
        tx.commit().await?;
        Ok(if existed {
            PutOrder::Replaced
        } else {
            PutOrder::Created
        })
    }

    /// Creates or replaces many orders in one transaction (imports, demo
    /// data, benchmarks).
    pub async fn put_orders(&self, orders: &[Order]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for order in orders {
            write_order(&mut tx, order).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The order with that number.
    pub async fn order(&self, number: &str) -> Result<Option<Order>, StoreError> {
        load_order(self.reader.acquire().await?.link(), number).await
    }

    /// Records a new status reported by the ERP; false when no such order.
    pub async fn set_order_status(&self, number: &str, status: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_rows().await?;
        let done = on!(&mut tx, |tx| sqlx::query(
            "UPDATE orders SET status = $1, updated_at = $2 WHERE number = $3"
        )
        .bind(status)
        .bind(now_ms())
        .bind(number)
        .execute(&mut **tx)
        .await?
        .rows_affected())
            > 0;
        tx.commit().await?;
        Ok(done)
    }

    /// Ids of the order's cancellations, oldest first.
    pub async fn order_cancellation_ids(&self, number: &str) -> Result<Vec<String>, StoreError> {
        let ids = on!(&self.reader, |pool| sqlx::query_scalar(
            "SELECT id FROM cancellations WHERE order_number = $1 ORDER BY created_at, id",
        )
        .bind(number)
        .fetch_all(pool)
        .await?);
        Ok(ids)
    }

    /// A customer's orders, newest order date first, at most `limit`
    /// (the console's search by customer).
    pub async fn orders_of_customer(
        &self,
        customer_number: &str,
        limit: u32,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let rows: Vec<(String, String, String, String)> = on!(&self.reader, |pool| {
            sqlx::query_as(
                "SELECT number, status, order_date, website FROM orders
                 WHERE customer_number = $1 ORDER BY order_date DESC, number LIMIT $2",
            )
            .bind(customer_number)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(number, status, order_date, website)| OrderSummary {
                number,
                status,
                order_date,
                website,
            })
            .collect())
    }

    /// Number of stored orders.
    pub async fn order_count(&self) -> Result<i64, StoreError> {
        Ok(on!(&self.reader, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders"
        )
        .fetch_one(pool)
        .await?))
    }
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

fn parse_date(text: &str) -> Result<Date, StoreError> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|e| StoreError::Corrupt(format!("date {text:?}: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

/// The value a stored name stands for; a name no value has is corrupt.
fn stored<T: StoredName>(name: &str) -> Result<T, StoreError> {
    from_stored_name(name).ok_or_else(|| corrupt(T::WHAT, name))
}

/// Writes the order and replaces its lines, payments and allocations
/// (inside the caller's transaction).
pub(super) async fn write_order(tx: &mut Tx, order: &Order) -> Result<(), StoreError> {
    let tracking = order.tracking.as_ref().map(|t| {
        to_json(&super::TrackingRecord {
            channel: t.channel,
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        })
    });
    if let Db::Sqlite(tx) = &mut *tx {
        // On SQLite the lines, payments and allocations are in the
        // order's own row.
        let documents = OrderDocuments::of(order);
        sqlx::query(
            "INSERT INTO orders (number, business_code, customer_number, website, status,
                 order_date, currency, erp_order_number, approval_state, tracking, updated_at,
                 lines, payments, allocations)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (number) DO UPDATE SET
                business_code = excluded.business_code,
                customer_number = excluded.customer_number, website = excluded.website,
                status = excluded.status, order_date = excluded.order_date,
                currency = excluded.currency, erp_order_number = excluded.erp_order_number,
                approval_state = excluded.approval_state, tracking = excluded.tracking,
                updated_at = excluded.updated_at, lines = excluded.lines,
                payments = excluded.payments, allocations = excluded.allocations",
        )
        .bind(&order.number)
        .bind(&order.business_code)
        .bind(&order.customer_number)
        .bind(&order.website)
        .bind(&order.status)
        .bind(format_date(order.order_date))
        .bind(order.currency.as_str())
        .bind(&order.erp_order_number)
        .bind(order.approval.as_ref().map(|a| approval_str(&a.state)))
        .bind(tracking)
        .bind(now_ms())
        .bind(documents.lines)
        .bind(documents.payments)
        .bind(documents.allocations)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    on!(&mut *tx, |tx| sqlx::query(
        "INSERT INTO orders (number, business_code, customer_number, website, status, order_date,
                             currency, erp_order_number, approval_state, tracking, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (number) DO UPDATE SET
            business_code = excluded.business_code, customer_number = excluded.customer_number,
            website = excluded.website, status = excluded.status, order_date = excluded.order_date,
            currency = excluded.currency, erp_order_number = excluded.erp_order_number,
            approval_state = excluded.approval_state, tracking = excluded.tracking,
            updated_at = excluded.updated_at",
    )
    .bind(&order.number)
    .bind(&order.business_code)
    .bind(&order.customer_number)
    .bind(&order.website)
    .bind(&order.status)
    .bind(format_date(order.order_date))
    .bind(order.currency.as_str())
    .bind(&order.erp_order_number)
    .bind(order.approval.as_ref().map(|a| approval_str(&a.state)))
    .bind(tracking)
    .bind(now_ms())
    .execute(&mut **tx)
    .await
    .map(drop)?);
    for table in ["order_lines", "payments", "allocations"] {
        on!(&mut *tx, |tx| sqlx::query(&format!(
            "DELETE FROM {table} WHERE order_number = $1"
        ))
        .bind(&order.number)
        .execute(&mut **tx)
        .await
        .map(drop)?);
    }
    for line in &order.lines {
        let (kind, applies_to) = match &line.kind {
            LineKind::Product => ("product", Vec::new()),
            LineKind::Discount { applies_to } => ("discount", applies_to.clone()),
        };
        on!(&mut *tx, |tx| sqlx::query(
            "INSERT INTO order_lines (order_number, line_number, sku, quantity, amount_minor,
                 tax_minor, parent_line, kind, applies_to, state, erp_line_ref)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&order.number)
        .bind(i64::from(line.number))
        .bind(&line.sku)
        .bind(i64::from(line.quantity))
        .bind(line.amount_minor)
        .bind(line.tax_minor)
        .bind(line.parent_line.map(i64::from))
        .bind(kind)
        .bind(to_json(&applies_to))
        .bind(line.state.name())
        .bind(&line.erp_line_ref)
        .execute(&mut **tx)
        .await
        .map(drop)?);
    }
    for (position, payment) in order.payments.iter().enumerate() {
        on!(&mut *tx, |tx| sqlx::query(
            "INSERT INTO payments (order_number, position, id, method, authorized_minor,
                 deposited_minor, voided_minor, refunded_minor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&order.number)
        .bind(position as i64)
        .bind(&payment.id)
        .bind(&payment.method)
        .bind(payment.authorized_minor)
        .bind(payment.deposited_minor)
        .bind(payment.voided_minor)
        .bind(payment.refunded_minor)
        .execute(&mut **tx)
        .await
        .map(drop)?);
    }
    for (position, allocation) in order.allocations.iter().enumerate() {
        on!(&mut *tx, |tx| sqlx::query(
            "INSERT INTO allocations (order_number, position, line_number, warehouse, quantity,
                 kind, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&order.number)
        .bind(position as i64)
        .bind(i64::from(allocation.line_number))
        .bind(&allocation.warehouse)
        .bind(i64::from(allocation.quantity))
        .bind(allocation.kind.name())
        .bind(allocation.state.name())
        .execute(&mut **tx)
        .await
        .map(drop)?);
    }
    Ok(())
}

/// An order's columns in [`column`]'s order, lines, payments and
/// allocations each a JSON array of arrays (see [`OrderDocuments`]), so
/// that a whole order (or a commit group's orders) is one statement: this
/// is on every cancellation's path. On SQLite the arrays are the order's
/// own columns; `$from` is where the orders come from (`o` is the orders
/// table); a macro so that each statement is one constant string.
macro_rules! sqlite_order_select {
    ($from:literal) => {
        concat!(
            "SELECT o.number, o.business_code, o.customer_number, o.website,
    o.status, o.order_date, o.currency, o.erp_order_number, o.approval_state, o.tracking,
    o.lines, o.payments, o.allocations
    FROM ",
            $from
        )
    };
}

/// One order by its number, on SQLite.
const SQLITE_ORDER: &str = concat!(sqlite_order_select!("orders o"), " WHERE o.number = $1");

/// One order by its number, on PostgreSQL, where lines, payments and
/// allocations have tables of their own: each aggregated into the array
/// SQLite stores (no rows aggregate to NULL there, not an empty array).
const POSTGRES_ORDER: &str = "SELECT o.number, o.business_code, o.customer_number, o.website,
    o.status, o.order_date, o.currency, o.erp_order_number, o.approval_state, o.tracking,
    (SELECT COALESCE(json_agg(json_build_array(line_number, sku, quantity, amount_minor,
            tax_minor, parent_line, kind, applies_to, state, erp_line_ref)), '[]')::text
       FROM order_lines WHERE order_number = o.number) AS lines,
    (SELECT COALESCE(json_agg(json_build_array(position, id, method, authorized_minor,
            deposited_minor, voided_minor, refunded_minor)), '[]')::text
       FROM payments WHERE order_number = o.number) AS payments,
    (SELECT COALESCE(json_agg(json_build_array(position, line_number, warehouse, quantity,
            kind, state)), '[]')::text
       FROM allocations WHERE order_number = o.number) AS allocations
    FROM orders o WHERE o.number = $1";

/// A commit group's orders, by a JSON array of their distinct numbers
/// (SQLite). The numbers drive the join, each looking its order up by
/// primary key: `o.number IN (SELECT value FROM json_each(?1))` built a
/// temporary B-tree of the list first (a pager and page cache opened and
/// closed on every group).
pub(super) const LOAD_ORDERS: &str = concat!(
    sqlite_order_select!("json_each(?1) AS wanted CROSS JOIN orders o"),
    " WHERE o.number = wanted.value"
);

/// An order's lines, payments and allocations as SQLite keeps them in the
/// order's row: each a JSON array with one array per item, its fields in
/// [`LineRow`]'s, [`PaymentRow`]'s and [`AllocationRow`]'s order (what
/// [`order_from_row`] reads back; the migration that made these columns
/// describes them for whoever reads the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OrderDocuments {
    /// The lines.
    pub lines: String,
    /// The payments, by position.
    pub payments: String,
    /// The allocations, by position.
    pub allocations: String,
}

impl OrderDocuments {
    /// The arrays of `order`.
    pub(super) fn of(order: &Order) -> OrderDocuments {
        let lines: Vec<_> = order
            .lines
            .iter()
            .map(|line| {
                let (kind, applies_to) = match &line.kind {
                    LineKind::Product => ("product", "[]".to_owned()),
                    LineKind::Discount { applies_to } => ("discount", to_json(applies_to)),
                };
                (
                    line.number,
                    &line.sku,
                    line.quantity,
                    line.amount_minor,
                    line.tax_minor,
                    line.parent_line,
                    kind,
                    applies_to,
                    line.state.name(),
                    &line.erp_line_ref,
                )
            })
            .collect();
        let payments: Vec<_> = order
            .payments
            .iter()
            .enumerate()
            .map(|(position, p)| {
                (
                    position,
                    &p.id,
                    &p.method,
                    p.authorized_minor,
                    p.deposited_minor,
                    p.voided_minor,
                    p.refunded_minor,
                )
            })
            .collect();
        let allocations: Vec<_> = order
            .allocations
            .iter()
            .enumerate()
            .map(|(position, a)| {
                (
                    position,
                    a.line_number,
                    &a.warehouse,
                    a.quantity,
                    a.kind.name(),
                    a.state.name(),
                )
            })
            .collect();
        OrderDocuments {
            lines: to_json(&lines),
            payments: to_json(&payments),
            allocations: to_json(&allocations),
        }
    }
}

type LineRow = (
    u32,
    String,
    u32,
    i64,
    i64,
    Option<u32>,
    String,
    String,
    String,
    Option<String>,
);
type PaymentRow = (i64, String, String, i64, i64, i64, i64);
type AllocationRow = (i64, u32, String, u32, String, String);

/// Reads an order with everything it holds, on a plain connection or inside
/// a transaction.
pub(super) async fn load_order(
    mut link: Link<'_>,
    number: &str,
) -> Result<Option<Order>, StoreError> {
    let sql = match link {
        Db::Sqlite(_) => SQLITE_ORDER,
        Db::Postgres(_) => POSTGRES_ORDER,
    };
    on!(&mut link, |c| sqlx::query(sql)
        .bind(number)
        .fetch_optional(&mut **c)
        .await?
        .map(|row| order_from_row(&row))
        .transpose())
}

/// A column of [`order_select!`]: its position in the statement, by which
/// it is read (a lookup by name compares the name with every column's,
/// on every order a commit group reads), and its name, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Column(usize, &'static str);

/// The columns of [`order_select!`], in the statement's order.
mod column {
    use super::Column;

    pub const NUMBER: Column = Column(0, "number");
    pub const BUSINESS_CODE: Column = Column(1, "business_code");
    pub const CUSTOMER_NUMBER: Column = Column(2, "customer_number");
    pub const WEBSITE: Column = Column(3, "website");
    pub const STATUS: Column = Column(4, "status");
    pub const ORDER_DATE: Column = Column(5, "order_date");
    pub const CURRENCY: Column = Column(6, "currency");
    pub const ERP_ORDER_NUMBER: Column = Column(7, "erp_order_number");
    pub const APPROVAL_STATE: Column = Column(8, "approval_state");
    pub const TRACKING: Column = Column(9, "tracking");
    pub const LINES: Column = Column(10, "lines");
    pub const PAYMENTS: Column = Column(11, "payments");
    pub const ALLOCATIONS: Column = Column(12, "allocations");

    /// Every column, in order.
    #[cfg(test)]
    pub const ALL: [Column; 13] = [
        NUMBER,
        BUSINESS_CODE,
        CUSTOMER_NUMBER,
        WEBSITE,
        STATUS,
        ORDER_DATE,
        CURRENCY,
        ERP_ORDER_NUMBER,
        APPROVAL_STATE,
        TRACKING,
        LINES,
        PAYMENTS,
        ALLOCATIONS,
    ];
}

/// A row of [`order_select!`], from whichever driver read it: the API's
/// reads go through sqlx, SQLite's cancellation writer through its own
/// connection.
pub(super) trait OrderRow {
    /// A text column that may be NULL.
    fn text(&self, column: Column) -> Result<Option<String>, StoreError>;

    /// A text column that must not be NULL.
    fn required(&self, column: Column) -> Result<String, StoreError> {
        self.text(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("order column {} is NULL", column.1)))
    }
}

impl OrderRow for sqlx::sqlite::SqliteRow {
    fn text(&self, column: Column) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column.0)?)
    }
}

impl OrderRow for sqlx::postgres::PgRow {
    fn text(&self, column: Column) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column.0)?)
    }
}

impl OrderRow for rusqlite::Row<'_> {
    fn text(&self, column: Column) -> Result<Option<String>, StoreError> {
        Ok(self.get(column.0)?)
    }
}

pub(super) fn order_from_row(row: &impl OrderRow) -> Result<Order, StoreError> {
    let currency = row.required(column::CURRENCY)?;
    let currency = Currency::parse(&currency).map_err(|_| corrupt("currency", &currency))?;
    let approval = match row.text(column::APPROVAL_STATE)? {
        None => None,
        Some(state) => Some(Approval {
            state: parse_approval(&state).ok_or_else(|| corrupt("approval state", &state))?,
        }),
    };
    let tracking = match row.text(column::TRACKING)? {
        None => None,
        Some(text) => {
            let record: super::TrackingRecord = from_json("tracking", &text)?;
            Some(Tracking {
                channel: record.channel,
                session: record.session,
                cuid: record.cuid,
                offline_channel: record.offline_channel,
            })
        }
    };

    let mut line_rows: Vec<LineRow> = from_json("lines", &row.required(column::LINES)?)?;
    line_rows.sort_by_key(|l| l.0);
    let mut lines = Vec::with_capacity(line_rows.len());
    for (
        number,
        sku,
        quantity,
        amount_minor,
        tax_minor,
        parent_line,
        kind,
        applies_to,
        state,
        erp_line_ref,
    ) in line_rows
    {
        lines.push(Line {
            number,
            sku,
            quantity,
            amount_minor,
            tax_minor,
            parent_line,
            kind: match kind.as_str() {
                "product" => LineKind::Product,
                "discount" => LineKind::Discount {
                    applies_to: from_json("appliesTo", &applies_to)?,
                },
                other => return Err(corrupt("line kind", other)),
            },
            state: stored(&state)?,
            erp_line_ref,
        });
    }

    let mut payment_rows: Vec<PaymentRow> =
        from_json("payments", &row.required(column::PAYMENTS)?)?;
    payment_rows.sort_by_key(|p| p.0);
    let payments = payment_rows
        .into_iter()
        .map(
            |(_, id, method, authorized_minor, deposited_minor, voided_minor, refunded_minor)| {
                Payment {
                    id,
                    method,
                    authorized_minor,
                    deposited_minor,
                    voided_minor,
                    refunded_minor,
                }
            },
        )
        .collect();

    let mut allocation_rows: Vec<AllocationRow> =
        from_json("allocations", &row.required(column::ALLOCATIONS)?)?;
    allocation_rows.sort_by_key(|a| a.0);
    let mut allocations = Vec::with_capacity(allocation_rows.len());
    for (_, line_number, warehouse, quantity, kind, state) in allocation_rows {
        allocations.push(Allocation {
            line_number,
            warehouse,
            quantity,
            kind: stored(&kind)?,
            state: stored(&state)?,
        });
    }

    Ok(Order {
        number: row.required(column::NUMBER)?,
        business_code: row.required(column::BUSINESS_CODE)?,
        customer_number: row.required(column::CUSTOMER_NUMBER)?,
        website: row.required(column::WEBSITE)?,
        status: row.required(column::STATUS)?,
        order_date: parse_date(&row.required(column::ORDER_DATE)?)?,
        currency,
        erp_order_number: row.text(column::ERP_ORDER_NUMBER)?,
        lines,
        payments,
        allocations,
        approval,
        tracking,
    })
}

/// The API and database name of an approval state.
pub(crate) fn approval_str(state: &ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved => "approved",
        ApprovalState::Rejected => "rejected",
        ApprovalState::Cancelled => "cancelled",
    }
}

/// Parses an approval state name.
pub(crate) fn parse_approval(s: &str) -> Option<ApprovalState> {
    match s {
        "pending" => Some(ApprovalState::Pending),
        "approved" => Some(ApprovalState::Approved),
        "rejected" => Some(ApprovalState::Rejected),
        "cancelled" => Some(ApprovalState::Cancelled),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AllocationKind, AllocationState, LineState};

    /// The names of a statement's result columns, in order: its select
    /// list split at the commas outside parentheses, each item named by
    /// its alias or, for `o.column`, the column.
    fn result_columns(statement: &str) -> Vec<String> {
        let list = statement
            .trim_start()
            .strip_prefix("SELECT ")
            .expect("a SELECT");
        let mut items = vec![String::new()];
        let mut depth = 0usize;
        for (at, c) in list.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(String::new());
                    continue;
                }
                _ if depth == 0 && list[at..].starts_with("FROM ") => break,
                _ => {}
            }
            if let Some(item) = items.last_mut() {
                item.push(c);
            }
        }
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                match item.rsplit_once(" AS ") {
                    Some((_, alias)) => alias.trim().to_owned(),
                    None => item.trim_start_matches("o.").to_owned(),
                }
            })
            .collect()
    }

    #[test]
    fn every_order_statement_has_its_columns_where_they_are_read() {
        let expected: Vec<&str> = column::ALL.iter().map(|c| c.1).collect();
        for (position, c) in column::ALL.iter().enumerate() {
            assert_eq!(c.0, position, "{}", c.1);
        }
        for statement in [SQLITE_ORDER, POSTGRES_ORDER, LOAD_ORDERS] {
            assert_eq!(result_columns(statement), expected, "{statement}");
        }
    }

    /// An order is stored by its primary key, its lines, payments and
    /// allocations in its row: reading a commit group's orders or one
    /// order, and a cancellation's write of it, goes down one B-tree,
    /// never an index first and then the table it points into, nor a
    /// table of lines, payments or allocations.
    #[test]
    fn an_order_is_read_and_written_along_its_primary_key() {
        use super::super::cancellations::sql;
        use super::super::query_plans::{migrated, plan};
        let db = migrated();
        for statement in [LOAD_ORDERS, SQLITE_ORDER, sql::UPDATE_ORDER] {
            let used = plan(&db, statement);
            assert!(
                used.contains("SEARCH o USING PRIMARY KEY (")
                    || used.starts_with("SEARCH orders USING PRIMARY KEY ("),
                "the order is found along its primary key:\n{used}"
            );
            assert!(!used.contains("USING INDEX"), "{used}");
            for table in ["order_lines", "payments", "allocations"] {
                assert!(!used.contains(table), "{table}:\n{used}");
            }
        }
    }

    /// An order with a line of each kind and state, payments voided and
    /// refunded, allocations of each kind and state.
    fn every_kind_of_item() -> Order {
        let line = |number, kind, state, parent_line, erp_line_ref: Option<&str>| Line {
            number,
            sku: format!("SKU \"{number}\""),
            quantity: number * 2,
            amount_minor: i64::from(number) * -1000,
            tax_minor: i64::from(number) * 190,
            parent_line,
            kind,
            state,
            erp_line_ref: erp_line_ref.map(str::to_owned),
        };
        let payment = |id: &str, voided_minor, refunded_minor| Payment {
            id: id.to_owned(),
            method: "card".to_owned(),
            authorized_minor: 5000,
            deposited_minor: 4000,
            voided_minor,
            refunded_minor,
        };
        let allocation = |line_number, kind, state| Allocation {
            line_number,
            warehouse: format!("W{line_number}"),
            quantity: 3,
            kind,
            state,
        };
        Order {
            number: "SO-1".to_owned(),
            business_code: "B1".to_owned(),
            customer_number: "C-1".to_owned(),
            website: "main".to_owned(),
            status: "Submitted".to_owned(),
            order_date: time::macros::date!(2024 - 09 - 01),
            currency: Currency::parse("EUR").expect("EUR"),
            erp_order_number: Some("ERP-1".to_owned()),
            lines: vec![
                line(1, LineKind::Product, LineState::Active, None, Some("L1")),
                line(2, LineKind::Product, LineState::Cancelled, Some(1), None),
                line(
                    3,
                    LineKind::Discount {
                        applies_to: vec![1, 2],
                    },
                    LineState::Active,
                    None,
                    None,
                ),
            ],
            payments: vec![payment("pay-1", 0, 0), payment("pay-2", 1000, 3000)],
            allocations: vec![
                allocation(1, AllocationKind::Existing, AllocationState::Allocated),
                allocation(2, AllocationKind::Expected, AllocationState::Released),
            ],
            approval: Some(Approval {
                state: ApprovalState::Pending,
            }),
            tracking: None,
        }
    }

    /// What SQLite keeps in the order's row reads back as the same order,
    /// through the same decoding PostgreSQL's aggregated rows go through.
    #[test]
    fn an_orders_documents_read_back_as_the_order() {
        let order = every_kind_of_item();
        let documents = OrderDocuments::of(&order);
        let db = rusqlite::Connection::open_in_memory().expect("open");
        let read = db
            .query_row(
                "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13",
                rusqlite::params![
                    order.number,
                    order.business_code,
                    order.customer_number,
                    order.website,
                    order.status,
                    format_date(order.order_date),
                    order.currency.as_str(),
                    order.erp_order_number,
                    order.approval.as_ref().map(|a| approval_str(&a.state)),
                    Option::<String>::None,
                    documents.lines,
                    documents.payments,
                    documents.allocations,
                ],
                |row| Ok(order_from_row(row)),
            )
            .expect("select")
            .expect("decode");
        assert_eq!(read, order);
    }
}
