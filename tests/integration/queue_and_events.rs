use std::time::Duration;

use ocr_shared::aws::{SnsEventPublisher, SqsJobQueue};
use ocr_shared::domain::{JobId, JobStatus, Owner, Timestamp};
use ocr_shared::ports::{EventPublisher, JobEvent, JobEventType, JobMessage, JobQueue};
use ocr_tests::{resources, sdk_config};

async fn receive(client: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sent_job_message_arrives_and_a_delayed_one_stays_hidden_until_its_time() {
    let config = sdk_config().await;
    let url = resources::queue(&config).await;
    let client = aws_sdk_sqs::Client::new(&config);
    let queue = SqsJobQueue::new(client.clone(), &url);
    let job_id = JobId::new();
    queue
        .send(&JobMessage {
            job_id: job_id.clone(),
            wake: 0,
        })
        .await
        .unwrap();

    let received = receive(&client, &url).await;
    assert_eq!(received.len(), 1);
    let message: JobMessage = serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(message.job_id, job_id);

    // Hidden for 2 s: not delivered at once, delivered again after.
    queue
        .delay_redelivery(
            received[0].receipt_handle().unwrap(),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert!(
        receive(&client, &url).await.is_empty(),
        "the message is still hidden"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = receive(&client, &url).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id(), received[0].message_id());
}

#[tokio::test]
async fn a_published_job_event_reaches_a_subscribed_queue_with_its_type() {
    let config = sdk_config().await;
    let topic = resources::topic(&config).await;
    let url = resources::queue(&config).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    resources::subscribe(&config, &topic, &url).await;

    let event = JobEvent {
        id: uuid::Uuid::new_v4().to_string(),
        event_type: JobEventType::Completed,
        created_at: Timestamp::now(),
        job_id: JobId::new(),
        owner: Owner::parse("alice").unwrap(),
        status: JobStatus::Completed,
    };
    SnsEventPublisher::new(aws_sdk_sns::Client::new(&config), &topic)
        .publish(&event)
        .await
        .unwrap();

    let received = receive(&sqs, &url).await;
    assert_eq!(received.len(), 1);
    let body: serde_json::Value = serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(body["type"], "job.completed");
    assert_eq!(body["job_id"], event.job_id.as_str());
    assert_eq!(body["status"], "completed");
    assert!(
        body.get("text").is_none(),
        "events never carry the document text"
    );
    let delivered: JobEvent = serde_json::from_value(body).unwrap();
    assert_eq!(delivered, event);
    let attribute = received[0]
        .message_attributes()
        .and_then(|attributes| attributes.get("type"))
        .and_then(|value| value.string_value());
    assert_eq!(attribute, Some("job.completed"));
}
