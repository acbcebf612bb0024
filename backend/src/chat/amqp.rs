//! The direct hand-off over AMQP (`AGENT_BROKER_URL=amqp://...`): the same Celery
//! protocol v2 task the Redis path pushes, published the way kombu's pyamqp transport
//! publishes it, so the Python worker cannot tell the backend from `send_task`.
//!
//! - Default exchange, routing key = the queue name (Celery's own choice for a direct
//!   queue), `mandatory`: a queue that does not exist returns the message instead of
//!   dropping it, and the attempt fails.
//! - Publisher confirms: a hand-off is done only once the broker confirmed it (for a
//!   persistent message on a durable queue, after it was written). Anything else is a
//!   failed attempt the outbox retries.
//! - One long-lived connection and channel per instance, shared by every hand-off
//!   (lapin pipelines concurrent publishes on a channel); made on first use and made
//!   again after a failure, so a RabbitMQ restart costs the attempts in between.
//!
//! Docs: docs/agent-manager.md ("Celery task"), docs/operations.md ("Choosing the
//! Celery broker").

use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString},
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Mutex;

use super::agent::{HandoffError, celery_body, celery_headers};

/// The AMQP message of one Celery task: properties (with the headers) and the body.
pub struct AmqpMessage {
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

/// Builds the message kombu would publish for `send_task(TASK_NAME, kwargs=...)`: the
/// Celery headers as AMQP headers, the task id as correlation id, a persistent JSON body
/// `[args, kwargs, embed]` (not base64: that is only the Redis transport's envelope).
pub fn amqp_message(kwargs: &Value, origin: &str) -> AmqpMessage {
    let task_id = uuid::Uuid::new_v4().to_string();
    let headers = match to_amqp(&celery_headers(&task_id, kwargs, origin)) {
        AMQPValue::FieldTable(t) => t,
        _ => FieldTable::default(),
    };
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_correlation_id(task_id.into())
        .with_delivery_mode(2) // persistent: survives a broker restart on a durable queue
        .with_priority(0)
        .with_headers(headers);
    AmqpMessage {
        properties,
        body: celery_body(kwargs).to_string().into_bytes(),
    }
}

/// JSON to an AMQP field value the way py-amqp decodes it back: null → void, strings
/// as long strings (RabbitMQ does not accept short strings in tables), integers as
/// 64-bit, arrays and objects as field arrays and tables.
fn to_amqp(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(to_amqp).collect::<Vec<_>>(),
        )),
        Value::Object(map) => {
            let mut table = FieldTable::default();
            for (k, v) in map {
                table.insert(ShortString::from(k.as_str()), to_amqp(v));
            }
            AMQPValue::FieldTable(table)
        }
    }
}

/// A failed attempt: whether the link it used must be dropped.
enum Failure {
    Broken(HandoffError),
    Refused(HandoffError),
}

struct Link {
    connection: Connection,
    channel: Channel,
    /// Counts connections made, so a failure seen on an old link does not drop a new one.
    generation: u64,
}

pub struct AmqpPublisher {
    url: SecretString,
    queue: String,
    name: String,
    link: Mutex<Option<Link>>,
    generation: std::sync::atomic::AtomicU64,
}

impl AmqpPublisher {
    pub fn new(url: SecretString, queue: String, instance_id: &str) -> Self {
        AmqpPublisher {
            url,
            queue,
            name: format!("mocheong-backend@{instance_id}"),
            link: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// One publish, confirmed by the broker within `limit` (connecting first if needed).
    pub async fn publish(&self, msg: AmqpMessage, limit: Duration) -> Result<(), HandoffError> {
        let deadline = tokio::time::Instant::now() + limit;
        let (channel, generation) = tokio::time::timeout_at(deadline, self.channel())
            .await
            .map_err(|_| HandoffError::Unreachable("RabbitMQ did not answer in time".into()))??;
        let outcome = tokio::time::timeout_at(deadline, self.publish_on(&channel, msg))
            .await
            .unwrap_or(Err(Failure::Broken(HandoffError::Unreachable(
                "RabbitMQ did not confirm the task in time".into(),
            ))));
        match outcome {
            Ok(()) => Ok(()),
            Err(Failure::Broken(e)) => {
                // A lost confirm or a dead channel: the next attempt connects anew.
                self.drop_link(generation).await;
                Err(e)
            }
            Err(Failure::Refused(e)) => Err(e),
        }
    }

    async fn publish_on(&self, channel: &Channel, msg: AmqpMessage) -> Result<(), Failure> {
        let broken = |e| Failure::Broken(unreachable(e));
        let confirm = channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &msg.body,
                msg.properties,
            )
            .await
            .map_err(broken)?
            .await
            .map_err(broken)?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            // Unroutable: the queue was deleted since it was declared. Connecting anew
            // declares it again.
            Confirmation::Ack(Some(returned)) => {
                Err(Failure::Broken(HandoffError::Unreachable(format!(
                    "RabbitMQ returned the task: no queue {:?} ({})",
                    self.queue, returned.reply_text
                ))))
            }
            Confirmation::Nack(_) => Err(Failure::Refused(HandoffError::Unreachable(
                "RabbitMQ did not take the task (nack)".into(),
            ))),
            Confirmation::NotRequested => Err(Failure::Broken(HandoffError::Unreachable(
                "publisher confirms are off on the channel".into(),
            ))),
        }
    }

    /// The live channel, connecting first when there is none (or it died).
    async fn channel(&self) -> Result<(Channel, u64), HandoffError> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref() {
            if l.connection.status().connected() && l.channel.status().connected() {
                return Ok((l.channel.clone(), l.generation));
            }
            tracing::warn!("AMQP broker connection lost; reconnecting");
            if let Some(l) = link.take() {
                close_in_background(l.connection, "reconnecting");
            }
        }
        let connection = Connection::connect(
            self.url.expose_secret(),
            ConnectionProperties::default().with_connection_name(self.name.as_str().into()),
        )
        .await
        .map_err(unreachable)?;
        let channel = match self.declare_queue(&connection).await {
            Ok(c) => c,
            Err(e) => {
                close_in_background(connection, "declare failed");
                return Err(e);
            }
        };
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        tracing::info!(queue = %self.queue, "AMQP broker connected (publisher confirms on)");
        *link = Some(Link {
            connection,
            channel: channel.clone(),
            generation,
        });
        Ok((channel, generation))
    }

    /// Makes sure the queue exists without contradicting whoever declared it. A passive
    /// declare first: it never conflicts, and the queue usually exists (a worker declared
    /// it), whatever its arguments (say a quorum queue). Only when it is missing is it
    /// declared as kombu declares Celery's queue (durable, not exclusive, not
    /// auto-delete, no arguments), so the task waits there when no worker has started yet
    /// and a worker declaring it later finds no conflict. Every refusal closes the
    /// channel (and lapin logs the close as an error), so the common case costs none.
    /// Returns the publishing channel, confirms on.
    async fn declare_queue(&self, connection: &Connection) -> Result<Channel, HandoffError> {
        let name = self.queue.as_str();
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let channel = connection.create_channel().await.map_err(unreachable)?;
        let channel = match channel
            .queue_declare(name.into(), passive, FieldTable::default())
            .await
        {
            Ok(_) => channel,
            Err(e) if is_soft(&e, AMQPSoftError::NOTFOUND) => {
                tracing::info!(queue = %name, "the Celery queue is missing; declaring it as Celery does");
                // The broker closed that channel with the error: declare on a new one.
                let channel = connection.create_channel().await.map_err(unreachable)?;
                match channel
                    .queue_declare(
                        name.into(),
                        QueueDeclareOptions::durable(),
                        FieldTable::default(),
                    )
                    .await
                {
                    Ok(_) => channel,
                    // Declared otherwise in between: it exists, which is all we need.
                    Err(e) if is_soft(&e, AMQPSoftError::PRECONDITIONFAILED) => {
                        connection.create_channel().await.map_err(unreachable)?
                    }
                    Err(e) => return Err(unreachable(e)),
                }
            }
            Err(e) => return Err(unreachable(e)),
        };
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unreachable)?;
        Ok(channel)
    }

    /// Forgets the link a failed publish used (it may be half dead: a lost confirm, a
    /// closed channel), unless a newer one replaced it meanwhile.
    async fn drop_link(&self, generation: u64) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.generation == generation)
            && let Some(l) = link.take()
        {
            close_in_background(l.connection, "publish failed");
        }
    }
}

/// Closes a connection we gave up on without waiting for it: a broker that stopped
/// answering would otherwise hold the link's lock, and every hand-off with it.
fn close_in_background(connection: Connection, why: &'static str) {
    tokio::spawn(async move {
        let close = connection.close(200, why.into());
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    });
}

fn is_soft(e: &lapin::Error, soft: AMQPSoftError) -> bool {
    matches!(
        e.kind(),
        lapin::ErrorKind::ProtocolError(err) if err.kind() == &AMQPErrorKind::Soft(soft)
    )
}

fn unreachable(e: lapin::Error) -> HandoffError {
    HandoffError::Unreachable(format!("RabbitMQ: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header<'a>(t: &'a FieldTable, k: &str) -> &'a AMQPValue {
        t.inner().get(k).unwrap_or_else(|| panic!("header {k}"))
    }

    fn text(v: &AMQPValue) -> String {
        match v {
            AMQPValue::LongString(s) => s.to_string(),
            other => panic!("not a long string: {other:?}"),
        }
    }

    #[test]
    fn the_message_carries_celery_protocol_v2_as_kombu_publishes_it() {
        let kwargs = json!({"message": "주차 되나요?", "message_id": "m1", "history": []});
        let msg = amqp_message(&kwargs, "backend-1");
        let p = &msg.properties;
        assert_eq!(
            p.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        assert_eq!(p.content_encoding().as_ref().unwrap().as_str(), "utf-8");
        assert_eq!(*p.delivery_mode(), Some(2), "persistent");
        assert_eq!(*p.priority(), Some(0));
        let h = p.headers().as_ref().unwrap();
        let id = text(header(h, "id"));
        assert_eq!(
            p.correlation_id().as_ref().unwrap().as_str(),
            id,
            "correlation id = task id"
        );
        assert_eq!(text(header(h, "root_id")), id);
        assert_eq!(text(header(h, "task")), super::super::agent::TASK_NAME);
        assert_eq!(text(header(h, "lang")), "py");
        assert_eq!(text(header(h, "origin")), "mocheong-backend@backend-1");
        assert_eq!(text(header(h, "kwargsrepr")), "{'message_id': \"m1\"}");
        assert_eq!(text(header(h, "argsrepr")), "()");
        for void in [
            "parent_id",
            "group",
            "eta",
            "expires",
            "shadow",
            "group_index",
        ] {
            assert_eq!(header(h, void), &AMQPValue::Void, "{void}");
        }
        assert_eq!(header(h, "retries"), &AMQPValue::LongLongInt(0));
        assert_eq!(header(h, "ignore_result"), &AMQPValue::Boolean(true));
        assert_eq!(
            header(h, "timelimit"),
            &AMQPValue::FieldArray(vec![AMQPValue::Void, AMQPValue::Void].into())
        );
        // The body is the plain JSON array, not the Redis envelope's base64.
        let body: Value = serde_json::from_slice(&msg.body).unwrap();
        assert_eq!(body[0], json!([]));
        assert_eq!(body[1], kwargs);
        assert_eq!(
            body[2],
            json!({"callbacks": null, "errbacks": null, "chain": null, "chord": null})
        );
        // A fresh task id per message.
        let again = amqp_message(&kwargs, "backend-1");
        assert_ne!(again.properties.correlation_id(), p.correlation_id());
    }
}
