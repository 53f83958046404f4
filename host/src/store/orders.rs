//! Orders with their lines, payments, allocations, approval and tracking.

use sqlx::Row;
use time::Date;
use time::macros::format_description;

use super::db::{Db, Link, Tx, on};
use super::{Store, StoreError, StoredName, from_json, from_stored_name, now_ms, to_json};
use crate::domain::{
    Allocation, AllocationState, Approval, ApprovalState, Currency, Line, LineKind, LineState,
    Order, Payment, Tracking,
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

/// Writes the order and replaces its children (inside the caller's
/// transaction).
pub(super) async fn write_order(tx: &mut Tx, order: &Order) -> Result<(), StoreError> {
    let tracking = order.tracking.as_ref().map(|t| {
        to_json(&super::TrackingRecord {
            channel: t.channel,
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        })
    });
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
        .bind(match line.state {
            LineState::Active => "active",
            LineState::Cancelled => "cancelled",
        })
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
        .bind(match allocation.state {
            AllocationState::Allocated => "allocated",
            AllocationState::Released => "released",
        })
        .execute(&mut **tx)
        .await
        .map(drop)?);
    }
    Ok(())
}

/// The order columns with lines, payments and allocations as JSON arrays, so
/// that a whole order (or a commit group's orders) is one statement: this is
/// on every cancellation's path. `$open … $close` is the dialect's JSON
/// aggregate around `$row`, its JSON array of a row; `$from` is where the
/// orders come from (`o` is the orders table); a macro so that each
/// dialect's statement is one constant string.
macro_rules! order_select {
    ($open:literal, $row:literal, $close:literal, $from:literal) => {
        concat!(
            "SELECT o.number, o.business_code, o.customer_number, o.website,
    o.status, o.order_date, o.currency, o.erp_order_number, o.approval_state, o.tracking,
    (SELECT ",
            $open,
            $row,
            "(line_number, sku, quantity, amount_minor, tax_minor,
            parent_line, kind, applies_to, state, erp_line_ref)",
            $close,
            "
       FROM order_lines WHERE order_number = o.number) AS lines,
    (SELECT ",
            $open,
            $row,
            "(position, id, method, authorized_minor,
            deposited_minor, voided_minor, refunded_minor)",
            $close,
            "
       FROM payments WHERE order_number = o.number) AS payments,
    (SELECT ",
            $open,
            $row,
            "(position, line_number, warehouse, quantity, kind, state)",
            $close,
            "
       FROM allocations WHERE order_number = o.number) AS allocations
    FROM ",
            $from
        )
    };
}

/// One order by its number, on SQLite.
const SQLITE_ORDER: &str = concat!(
    order_select!("json_group_array(", "json_array", ")", "orders o"),
    " WHERE o.number = $1"
);

/// One order by its number, on PostgreSQL (where no rows aggregate to
/// NULL, not an empty array).
const POSTGRES_ORDER: &str = concat!(
    order_select!(
        "COALESCE(json_agg(",
        "json_build_array",
        "), '[]')::text",
        "orders o"
    ),
    " WHERE o.number = $1"
);

/// A commit group's orders, by a JSON array of their distinct numbers
/// (SQLite). The numbers drive the join, each looking its order up by
/// primary key: `o.number IN (SELECT value FROM json_each(?1))` built a
/// temporary B-tree of the list first (a pager and page cache opened and
/// closed on every group).
pub(super) const LOAD_ORDERS: &str = concat!(
    order_select!(
        "json_group_array(",
        "json_array",
        ")",
        "json_each(?1) AS wanted CROSS JOIN orders o"
    ),
    " WHERE o.number = wanted.value"
);

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
            state: match state.as_str() {
                "active" => LineState::Active,
                "cancelled" => LineState::Cancelled,
                other => return Err(corrupt("line state", other)),
            },
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
            kind: from_stored_name(&kind).ok_or_else(|| corrupt("allocation kind", &kind))?,
            state: match state.as_str() {
                "allocated" => AllocationState::Allocated,
                "released" => AllocationState::Released,
                other => return Err(corrupt("allocation state", other)),
            },
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

    /// An order's tables are stored by their primary keys: reading a
    /// commit group's orders or one order, and each write of a
    /// cancellation, goes down one B-tree per table, never an index first
    /// and then the table it points into.
    #[test]
    fn an_order_is_read_and_written_along_its_primary_keys() {
        use super::super::cancellations::sql;
        use super::super::query_plans::{migrated, plan};
        let db = migrated();
        for statement in [LOAD_ORDERS, SQLITE_ORDER] {
            let read = plan(&db, statement);
            for table in ["o", "order_lines", "payments", "allocations"] {
                assert!(
                    read.contains(&format!("SEARCH {table} USING PRIMARY KEY (")),
                    "{table} is read along its primary key:\n{read}"
                );
            }
            assert!(!read.contains("USING INDEX"), "{read}");
        }
        for (table, statement) in [
            ("orders", sql::UPDATE_ORDER),
            ("order_lines", sql::CANCEL_LINE),
            ("payments", sql::UPDATE_PAYMENT),
            ("allocations", sql::RELEASE_ALLOCATION),
        ] {
            let write = plan(&db, statement);
            assert!(
                write.starts_with(&format!("SEARCH {table} USING PRIMARY KEY (")),
                "{table} is written along its primary key:\n{write}"
            );
        }
    }
}
