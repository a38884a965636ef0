//! Each function's calls evaluated against its role as deployed, by an IAM
//! policy engine (`tests/iam`, @cloud-copilot/iam-simulate) rather than by our
//! own reading of the template. The template is translated as `sam deploy`
//! translates it (`tools/iam_policies.py`, aws-sam-translator), each call is
//! an action, a resource ARN and the context keys the request carries, and:
//! every call a function makes is allowed; a missing key reads as 404 (S3
//! checks ListBucket, in a GetObject's context, with no `s3:prefix`); and every
//! call another function makes, or nobody should, is denied to it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ocr_tests::dev_process::repo;
use ocr_tests::template::functions;
use serde_json::{Value, json};

/// The deployed roles: `tools/iam_policies.py` over `template`.
fn deployed(template: &Path) -> Value {
    deployed_with(template, &[])
}

/// The deployed roles with these parameters (`Name=Value`).
fn deployed_with(template: &Path, parameters: &[&str]) -> Value {
    let python = repo().join(".venv-sam/bin/python");
    assert!(
        python.is_file(),
        "the deploy venv is not installed: run `make setup-deploy`"
    );
    let ran = Command::new(python)
        .arg(repo().join("tools/iam_policies.py"))
        .arg(template)
        .args(parameters)
        .output()
        .expect("the deploy venv's python runs");
    assert!(
        ran.status.success(),
        "iam_policies.py: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    serde_json::from_slice(&ran.stdout).unwrap()
}

/// The engine's decision on each request, in order.
fn evaluate(account: &str, requests: &[Value]) -> Vec<Value> {
    let engine = repo().join("tests/iam/node_modules/@cloud-copilot/iam-simulate");
    assert!(
        engine.is_dir(),
        "the IAM policy engine is not installed: run `make setup-iam`"
    );
    let mut child = Command::new("node")
        .arg(repo().join("tests/iam/simulate.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (Debian: nodejs)");
    let input = json!({ "account": account, "requests": requests });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "simulate.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One request a function sends: what IAM is asked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    action: String,
    resource: String,
    /// Context keys besides the ones every request carries, as `key=value`.
    context: Vec<(String, String)>,
}

impl Call {
    fn new(action: &str, resource: impl Into<String>) -> Self {
        Call {
            action: action.to_owned(),
            resource: resource.into(),
            context: Vec::new(),
        }
    }
}

/// The stack's resources a function's calls name.
struct Stack<'a> {
    deployed: &'a Value,
}

impl Stack<'_> {
    fn arn(&self, logical: &str) -> String {
        self.deployed["resources"][logical]["arn"]
            .as_str()
            .unwrap_or_else(|| panic!("no resource {logical}"))
            .to_owned()
    }

    fn environment<'f>(&self, function: &'f Value, name: &str) -> Option<&'f str> {
        function["environment"][name].as_str()
    }

    /// A queue's ARN from its URL.
    fn queue_arn(&self, url: &str) -> String {
        let name = url.rsplit('/').next().unwrap();
        format!(
            "arn:aws:sqs:{}:{}:{name}",
            self.deployed["region"].as_str().unwrap(),
            self.deployed["account"].as_str().unwrap()
        )
    }

    /// The requests behind one of a function's declared actions.
    fn calls(&self, function: &Value, declared: &str) -> Vec<Call> {
        let (action, scope) = match declared.split_once('@') {
            Some((action, scope)) => (action, Some(scope)),
            None => (declared, None),
        };
        let table = self.arn("JobsTable");
        let bucket = self.arn("DocumentsBucket");
        let key = "5cc7d92f-4a9d-43bd-b39c-3fe2c1c900a5";
        let service = action.split(':').next().unwrap();
        let resources: Vec<String> = match (service, scope) {
            ("dynamodb", None) => vec![table],
            ("dynamodb", Some(index)) => vec![format!("{table}/{index}")],
            // An object under the prefix; the chunks of a job sit a level deeper.
            ("s3", Some(prefix)) => {
                let prefix = prefix.trim_end_matches('*');
                vec![format!("{bucket}/{prefix}{key}/00001.json")]
            }
            ("s3", None) => vec![bucket],
            ("sqs", None) if action == "sqs:SendMessage" => {
                let url = self.environment(function, "JOBS_QUEUE_URL").unwrap();
                vec![self.queue_arn(url)]
            }
            ("sqs", None) => function["event_queues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|arn| arn.as_str().unwrap().to_owned())
                .collect(),
            ("sns", None) => vec![
                self.environment(function, "EVENTS_TOPIC_ARN")
                    .unwrap()
                    .to_owned(),
            ],
            ("secretsmanager", None) => function["environment"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(name, _)| name.ends_with("_SECRET_ARN"))
                .map(|(_, arn)| arn.as_str().unwrap().to_owned())
                .collect(),
            _ => panic!("no resource is known for {declared}"),
        };
        assert!(!resources.is_empty(), "{declared}: no resource");
        resources
            .into_iter()
            .map(|resource| Call::new(action, resource))
            .collect()
    }

    /// Calls no function of this stack should be able to make.
    fn never(&self) -> Vec<Call> {
        let table = self.arn("JobsTable");
        let bucket = self.arn("DocumentsBucket");
        let jobs_queue = self.arn("JobsQueue");
        let mut calls = vec![
            Call::new("dynamodb:Scan", &table),
            Call::new("dynamodb:DeleteTable", &table),
            Call::new("dynamodb:Query", format!("{table}/index/elsewhere")),
            Call::new("s3:DeleteBucket", &bucket),
            Call::new("s3:PutBucketPolicy", &bucket),
            Call::new("s3:GetObject", format!("{bucket}/elsewhere/file")),
            Call::new("s3:PutObject", format!("{bucket}/elsewhere/file")),
            Call::new("s3:GetObject", "arn:aws:s3:::another-bucket/uploads/x"),
            Call::new("s3:ListBucket", "arn:aws:s3:::another-bucket"),
            Call::new("sqs:DeleteQueue", &jobs_queue),
            Call::new("sqs:SendMessage", self.arn("JobsDeadLetterQueue")),
            Call::new("sns:DeleteTopic", self.arn("JobEventsTopic")),
            Call::new(
                "secretsmanager:PutSecretValue",
                self.arn("UpstageApiKeySecret"),
            ),
            Call::new(
                "iam:PassRole",
                format!(
                    "arn:aws:iam::{}:role/admin",
                    self.deployed["account"].as_str().unwrap()
                ),
            ),
        ];
        // S3 over plain HTTP: the bucket's policy refuses it, whoever asks.
        let mut plain = Call::new("s3:GetObject", format!("{bucket}/results/x.json"));
        plain
            .context
            .push(("aws:SecureTransport".into(), "false".into()));
        calls.push(plain);
        calls
    }
}

/// The request IAM evaluates when `function` makes `call`.
fn request(deployed: &Value, function: &Value, call: &Call) -> Value {
    let mut context = serde_json::Map::new();
    context.insert("aws:SecureTransport".into(), json!("true"));
    for (key, value) in &call.context {
        context.insert(key.clone(), json!(value));
    }
    let on_bucket = call.resource.starts_with("arn:aws:s3:::")
        && call.resource.starts_with(
            deployed["resources"]["DocumentsBucket"]["arn"]
                .as_str()
                .unwrap(),
        );
    json!({
        "principal": function["role"],
        "policies": function["policies"],
        "resource_policy": if on_bucket { deployed["bucket_policy"].clone() } else { Value::Null },
        "action": call.action,
        "resource": call.resource,
        "context": context,
    })
}

/// What the engine says that the template gets wrong, one line each.
fn problems(template: &Path) -> Vec<String> {
    let deployed = deployed(template);
    let stack = Stack {
        deployed: &deployed,
    };
    let mut asked = Vec::new();
    for spec in functions() {
        let function = &deployed["functions"][spec.binary.as_str()];
        assert!(function.is_object(), "no function runs {}", spec.binary);
        let needed: BTreeSet<Call> = spec
            .actions
            .iter()
            .flat_map(|declared| stack.calls(function, declared))
            .collect();
        // Every other function's calls, and the ones nobody should make.
        let others: BTreeSet<Call> = functions()
            .iter()
            .filter(|other| other.binary != spec.binary)
            .flat_map(|other| {
                let theirs = &deployed["functions"][other.binary.as_str()];
                other
                    .actions
                    .iter()
                    .flat_map(|declared| stack.calls(theirs, declared))
                    .collect::<Vec<_>>()
            })
            .chain(stack.never())
            .filter(|call| !needed.contains(call))
            .collect();
        for call in needed {
            asked.push((spec.binary, call, true));
        }
        for call in others {
            asked.push((spec.binary, call, false));
        }
    }
    let requests: Vec<Value> = asked
        .iter()
        .map(|(binary, call, _)| request(&deployed, &deployed["functions"][binary.as_str()], call))
        .collect();
    let decisions = evaluate(deployed["account"].as_str().unwrap(), &requests);
    assert_eq!(decisions.len(), asked.len());
    println!(
        "IAM: {} calls evaluated ({} needed, {} not)",
        asked.len(),
        asked.iter().filter(|(_, _, needed)| *needed).count(),
        asked.iter().filter(|(_, _, needed)| !*needed).count()
    );
    let mut found = Vec::new();
    for ((binary, call, needed), decision) in asked.iter().zip(decisions) {
        let what = format!("{binary}: {} on {}", call.action, call.resource);
        match (decision.as_str(), needed) {
            (Some("Allowed"), true) => {}
            (Some("ExplicitlyDenied" | "ImplicitlyDenied"), false) => {}
            (Some(decision), true) => found.push(format!("{what} is needed but {decision}")),
            (Some(_), false) => found.push(format!("{what} is not needed but Allowed")),
            (None, _) => found.push(format!("{what}: the engine refused it: {decision}")),
        }
    }
    found
}

#[test]
fn an_iam_engine_allows_every_call_each_function_makes_and_denies_the_rest() {
    let found = problems(&repo().join("template.yaml"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_engine_sees_that_a_listbucket_limited_to_prefixes_leaves_missing_keys_403() {
    // The grant as it stood: ListBucket only under an s3:prefix condition,
    // which a GetObject or HeadObject never carries.
    let template = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let limited = template.replace(
        "      Action: [s3:ListBucket]\n              Resource: !GetAtt DocumentsBucket.Arn\n",
        "      Action: [s3:ListBucket]\n              Resource: !GetAtt DocumentsBucket.Arn\n              Condition:\n                StringLike:\n                  s3:prefix: [uploads/*, results/*]\n",
    );
    assert_ne!(
        limited, template,
        "the ListBucket grants are where the test expects them"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, limited).unwrap();

    let found = problems(&path);

    for binary in ["ocr-worker", "sweeper", "upload-api"] {
        assert!(
            found.iter().any(|p| p
                .starts_with(&format!("{binary}: s3:ListBucket on arn:aws:s3:::"))
                && p.ends_with("is needed but ImplicitlyDenied")),
            "{binary}: {found:#?}"
        );
    }
}

#[test]
fn with_a_customer_key_each_function_may_use_it_for_what_it_reads_and_writes_and_no_more() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let keyed = deployed_with(
        &repo().join("template.yaml"),
        &[&format!("DocumentsKmsKeyArn={key}")],
    );
    let rule = &keyed["bucket_encryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"], "aws:kms",
        "{rule}"
    );
    assert_eq!(
        rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], key,
        "{rule}"
    );
    assert_eq!(rule["BucketKeyEnabled"], true);
    // Writes need a data key, reads a decrypt; HEAD needs neither.
    let expected = [
        ("upload-api", true, true),
        ("status-api", false, true),
        ("ingest", true, true),
        ("ocr-worker", true, true),
        ("notifier", false, true),
        ("sweeper", false, false),
    ];
    let mut asked = Vec::new();
    let mut requests = Vec::new();
    for (binary, writes, reads) in expected {
        let function = &keyed["functions"][binary];
        for (action, allowed) in [("kms:GenerateDataKey", writes), ("kms:Decrypt", reads)] {
            asked.push((binary, action, allowed));
            let mut asking = request(&keyed, function, &Call::new(action, key));
            // KMS honours IAM policies only where the key's policy lets it:
            // the default key policy, which the parameter's description asks for.
            asking["resource_policy"] = json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "kms:*",
                    "Resource": "*"
                }]
            });
            requests.push(asking);
        }
    }
    let decisions = evaluate(keyed["account"].as_str().unwrap(), &requests);
    for ((binary, action, allowed), decision) in asked.iter().zip(decisions) {
        assert_eq!(
            decision == "Allowed",
            *allowed,
            "{binary}: {action} on the documents' key: {decision}"
        );
    }
    // Without the parameter the bucket is SSE-S3 and no role names a key.
    let plain = deployed(&repo().join("template.yaml"));
    let rule = &plain["bucket_encryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    assert!(!plain["functions"].to_string().contains("kms:"));
}
