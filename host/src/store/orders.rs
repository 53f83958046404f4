//! Orders with their lines, payments, allocations, approval and tracking.

use sqlx::{Row, SqliteConnection};
use time::Date;
use time::macros::format_description;

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

impl Store {
    /// Creates or replaces an order (API `PUT /v1/orders/{orderNumber}`).
    /// The order keeps its cancellations; its lines, payments and
    /// allocations are replaced by the given ones.
    pub async fn put_order(&self, order: &Order) -> Result<PutOrder, StoreError> {
        let mut tx = self.write().await?;
        let existed = sqlx::query("SELECT 1 FROM orders WHERE number = ?")
            .bind(&order.number)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
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
        let mut conn = self.reader.acquire().await?;
        load_order(&mut conn, number).await
    }

    /// Records a new status reported by the ERP; false when no such order.
    pub async fn set_order_status(&self, number: &str, status: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE orders SET status = ?, updated_at = ? WHERE number = ?")
            .bind(status)
            .bind(now_ms())
            .bind(number)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(done)
    }

    /// Ids of the order's cancellations, oldest first.
    pub async fn order_cancellation_ids(&self, number: &str) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM cancellations WHERE order_number = ? ORDER BY created_at, rowid",
        )
        .bind(number)
        .fetch_all(&self.reader)
        .await?;
        Ok(ids)
    }

    /// Number of stored orders.
    pub async fn order_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.reader)
            .await?)
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
pub(super) async fn write_order(
    conn: &mut SqliteConnection,
    order: &Order,
) -> Result<(), StoreError> {
    let tracking = order.tracking.as_ref().map(|t| {
        to_json(&super::TrackingRecord {
            channel: t.channel,
            session: t.session.clone(),
            cuid: t.cuid.clone(),
            offline_channel: t.offline_channel.clone(),
        })
    });
    sqlx::query(
        "INSERT INTO orders (number, business_code, customer_number, website, status, order_date,
                             currency, erp_order_number, approval_state, tracking, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    .execute(&mut *conn)
    .await?;
    for table in ["order_lines", "payments", "allocations"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE order_number = ?"))
            .bind(&order.number)
            .execute(&mut *conn)
            .await?;
    }
    for line in &order.lines {
        let (kind, applies_to) = match &line.kind {
            LineKind::Product => ("product", Vec::new()),
            LineKind::Discount { applies_to } => ("discount", applies_to.clone()),
        };
        sqlx::query(
            "INSERT INTO order_lines (order_number, line_number, sku, quantity, amount_minor,
                 tax_minor, parent_line, kind, applies_to, state, erp_line_ref)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&order.number)
        .bind(line.number)
        .bind(&line.sku)
        .bind(line.quantity)
        .bind(line.amount_minor)
        .bind(line.tax_minor)
        .bind(line.parent_line)
        .bind(kind)
        .bind(to_json(&applies_to))
        .bind(match line.state {
            LineState::Active => "active",
            LineState::Cancelled => "cancelled",
        })
        .bind(&line.erp_line_ref)
        .execute(&mut *conn)
        .await?;
    }
    for (position, payment) in order.payments.iter().enumerate() {
        sqlx::query(
            "INSERT INTO payments (order_number, position, id, method, authorized_minor,
                 deposited_minor, voided_minor, refunded_minor)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&order.number)
        .bind(position as i64)
        .bind(&payment.id)
        .bind(&payment.method)
        .bind(payment.authorized_minor)
        .bind(payment.deposited_minor)
        .bind(payment.voided_minor)
        .bind(payment.refunded_minor)
        .execute(&mut *conn)
        .await?;
    }
    for (position, allocation) in order.allocations.iter().enumerate() {
        sqlx::query(
            "INSERT INTO allocations (order_number, position, line_number, warehouse, quantity,
                 kind, state)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&order.number)
        .bind(position as i64)
        .bind(allocation.line_number)
        .bind(&allocation.warehouse)
        .bind(allocation.quantity)
        .bind(allocation.kind.name())
        .bind(match allocation.state {
            AllocationState::Allocated => "allocated",
            AllocationState::Released => "released",
        })
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One order row with its children aggregated as JSON, so that a whole
/// order is read in one statement (this is on every cancellation's path).
/// The order columns with lines, payments and allocations as JSON arrays, so
/// that an order (or a group's orders) is one statement. A macro so that
/// [`LOAD_ORDERS`] can be one constant string.
macro_rules! order_select {
    () => {
        "SELECT o.number, o.business_code, o.customer_number, o.website,
    o.status, o.order_date, o.currency, o.erp_order_number, o.approval_state, o.tracking,
    (SELECT json_group_array(json_array(line_number, sku, quantity, amount_minor, tax_minor,
            parent_line, kind, applies_to, state, erp_line_ref))
       FROM order_lines WHERE order_number = o.number) AS lines,
    (SELECT json_group_array(json_array(position, id, method, authorized_minor,
            deposited_minor, voided_minor, refunded_minor))
       FROM payments WHERE order_number = o.number) AS payments,
    (SELECT json_group_array(json_array(position, line_number, warehouse, quantity, kind, state))
       FROM allocations WHERE order_number = o.number) AS allocations
    FROM orders o"
    };
}

const ORDER_SELECT: &str = order_select!();

/// A commit group's orders, by a JSON array of their numbers.
pub(super) const LOAD_ORDERS: &str = concat!(
    order_select!(),
    " WHERE o.number IN (SELECT value FROM json_each(?1))"
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

/// Reads an order with everything it holds.
pub(super) async fn load_order(
    conn: &mut SqliteConnection,
    number: &str,
) -> Result<Option<Order>, StoreError> {
    sqlx::query(&format!("{ORDER_SELECT} WHERE o.number = ?"))
        .bind(number)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| order_from_row(&row))
        .transpose()
}

/// A row of [`ORDER_SELECT`], from whichever driver read it: the API's reads
/// go through sqlx, the cancellation writer through its own connection.
pub(super) trait OrderRow {
    /// A text column that may be NULL.
    fn text(&self, column: &str) -> Result<Option<String>, StoreError>;

    /// A text column that must not be NULL.
    fn required(&self, column: &str) -> Result<String, StoreError> {
        self.text(column)?
            .ok_or_else(|| StoreError::Corrupt(format!("order column {column} is NULL")))
    }
}

impl OrderRow for sqlx::sqlite::SqliteRow {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

impl OrderRow for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(column)?)
    }
}

pub(super) fn order_from_row(row: &impl OrderRow) -> Result<Order, StoreError> {
    let currency = row.required("currency")?;
    let currency = Currency::parse(&currency).map_err(|_| corrupt("currency", &currency))?;
    let approval = match row.text("approval_state")? {
        None => None,
        Some(state) => Some(Approval {
            state: parse_approval(&state).ok_or_else(|| corrupt("approval state", &state))?,
        }),
    };
    let tracking = match row.text("tracking")? {
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

    let mut line_rows: Vec<LineRow> = from_json("lines", &row.required("lines")?)?;
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

    let mut payment_rows: Vec<PaymentRow> = from_json("payments", &row.required("payments")?)?;
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
        from_json("allocations", &row.required("allocations")?)?;
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
        number: row.required("number")?,
        business_code: row.required("business_code")?,
        customer_number: row.required("customer_number")?,
        website: row.required("website")?,
        status: row.required("status")?,
        order_date: parse_date(&row.required("order_date")?)?,
        currency,
        erp_order_number: row.text("erp_order_number")?,
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
