//! The CLI reaching AWS as an operator expects: the account the named profile says, a request
//! that never hangs, errors said in words, `--endpoint-url` for DynamoDB only. Against a local
//! listener that records what it is sent (and moto, MOTO_ENDPOINT, for a real table error).

mod support;
use support::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const EMPTY_SCAN: &str = r#"{"Count":0,"Items":[],"ScannedCount":0}"#;

/// 2: an explicit --profile wins over credentials in the environment, as with the AWS CLI;
/// an unknown profile is an error, not silently ignored.
#[test]
fn an_explicit_profile_wins_over_environment_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = write(
        &dir,
        "credentials",
        "[prod]\naws_access_key_id = AKIAPRODPROFILE0001\naws_secret_access_key = prod-secret\n",
    );
    let config = write(&dir, "config", "[profile prod]\nregion = us-east-1\n");
    let aws = Listener::start(Some(EMPTY_SCAN));
    let run = |profile: &str| {
        bare_tarem()
            .args([
                "mapping",
                "list",
                "--profile",
                profile,
                "--endpoint-url",
                &aws.url,
            ])
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT0001")
            .env("AWS_SECRET_ACCESS_KEY", "env-secret")
            .output()
            .unwrap()
    };
    let output = run("prod");
    assert!(output.status.success(), "{}", text(&output));
    let heads = aws.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].contains("Credential=AKIAPRODPROFILE0001/"),
        "signed with the environment's key: {}",
        heads[0]
    );

    let unknown = run("nosuch");
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("--profile nosuch: no such profile"),
        "{}",
        text(&unknown)
    );
    assert_eq!(
        aws.heads().len(),
        1,
        "nothing was sent for the unknown profile"
    );
}

/// 5: an endpoint that accepts and never answers ends the command with the AWS exit code, in
/// the time --timeout gives it, saying what happened.
#[test]
fn an_endpoint_that_never_answers_times_out_with_exit_code_3() {
    let silent = Listener::start(None);
    let output = bare_tarem()
        .args([
            "mapping",
            "list",
            "--timeout",
            "1",
            "--endpoint-url",
            &silent.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("no answer in time"),
        "{}",
        text(&output)
    );
}

/// 7: an AWS failure is said in an operator's words: the table and endpoint it was reaching,
/// what AWS said, what to check; never the SDK's debug dump.
#[tokio::test]
async fn aws_errors_name_the_table_and_read_as_sentences() {
    let missing = tarem("NoSuchMappingTable", &["list"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    let said = text(&missing);
    assert!(
        said.contains(&format!("table NoSuchMappingTable at {}", endpoint())),
        "{said}"
    );
    assert!(said.contains("ResourceNotFoundException"), "{said}");
    assert!(
        said.contains("check the name, --region and --profile"),
        "{said}"
    );

    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let refused = bare_tarem()
        .args([
            "mapping",
            "list",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    let said = text(&refused);
    assert!(
        !said.contains("ConnectorError") && !said.contains(" { "),
        "a debug dump: {said}"
    );
    assert!(said.contains("AWS could not be reached"), "{said}");
}

/// 9: --endpoint-url is DynamoDB's: the SSM and Support look-ups of an online validation never
/// go there.
#[test]
fn the_endpoint_url_redirects_dynamodb_only() {
    let dynamodb = Listener::start(Some(EMPTY_SCAN));
    let elsewhere = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", socket.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "one.json",
        r#"[{"checkName": "c", "ssmAutomationDocument": "D"}]"#,
    );
    let output = bare_tarem()
        .args([
            "mapping",
            "validate",
            &file,
            "--endpoint-url",
            &dynamodb.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_SSM", &elsewhere)
        .env("AWS_ENDPOINT_URL_SUPPORT", &elsewhere)
        .env("XDG_CACHE_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(
        dynamodb.heads(),
        Vec::<String>::new(),
        "SSM or Support calls went to DynamoDB's endpoint"
    );
}

/// 9: the cached check list belongs to one Support endpoint and one set of credentials.
#[test]
fn the_check_cache_is_kept_per_endpoint_and_credentials() {
    use tarem::mappings::DiskCachedChecks;
    let real = DiskCachedChecks::<()>::path_for("aws", "AKIAPROD");
    assert_ne!(
        real,
        DiskCachedChecks::<()>::path_for("http://127.0.0.1:5000", "AKIAPROD")
    );
    assert_ne!(
        real,
        DiskCachedChecks::<()>::path_for("aws", "AKIAOTHERACCOUNT")
    );
    assert_eq!(real, DiskCachedChecks::<()>::path_for("aws", "AKIAPROD"));
}
