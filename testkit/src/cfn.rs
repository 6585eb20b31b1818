//! A SAM or CloudFormation template read as CloudFormation reads it: its parameters (the given
//! values, else each Default), its conditions (a resource whose condition is false is left
//! out), and the intrinsic functions the templates here use, evaluated.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use serde_yaml_ng::value::TaggedValue;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = crate::REGION;

/// The template at `path` with these parameter values (every other parameter takes its
/// Default) and its intrinsic functions evaluated.
pub fn evaluated(path: &Path, mut parameters: BTreeMap<String, Value>) -> Value {
    let text = std::fs::read_to_string(path).expect("the template");
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("the template is YAML");
    // Every other parameter takes its Default, as CloudFormation does.
    for (name, declaration) in yaml["Parameters"]
        .as_mapping()
        .expect("the template has parameters")
    {
        let Some(default) = declaration.get("Default") else {
            continue;
        };
        let default = match (declaration["Type"].as_str(), default.as_str()) {
            (Some("CommaDelimitedList"), Some(list)) => json!(list.split(',').collect::<Vec<_>>()),
            _ => evaluate(default, &BTreeMap::new()),
        };
        parameters
            .entry(name.as_str().unwrap().to_owned())
            .or_insert(default);
    }
    parameters.insert("AWS::Partition".to_owned(), json!("aws"));
    parameters.insert("AWS::Region".to_owned(), json!(REGION));
    parameters.insert("AWS::AccountId".to_owned(), json!(ACCOUNT));
    parameters.insert("AWS::NoValue".to_owned(), Value::Null);
    // The conditions first: `If` picks its branch by them.
    let conditions: Vec<(String, Value)> = yaml["Conditions"]
        .as_mapping()
        .expect("the template has conditions")
        .iter()
        .map(|(name, condition)| {
            let name = name.as_str().unwrap().to_owned();
            (
                format!("condition:{name}"),
                evaluate(condition, &parameters),
            )
        })
        .collect();
    parameters.extend(conditions);
    let mut template = evaluate(&yaml, &parameters);
    // A resource or an output whose condition is false is not created.
    for section in ["Resources", "Outputs"] {
        if let Some(items) = template[section].as_object_mut() {
            items.retain(|_, item| {
                let Some(condition) = item["Condition"].as_str() else {
                    return true;
                };
                parameters[&format!("condition:{condition}")] == json!(true)
            });
        }
    }
    template
}

/// Evaluates the intrinsic functions the template uses (short and long forms): Ref, Sub,
/// Join, Split, GetAtt (to a placeholder), Equals, Not, and If by its condition.
fn evaluate(yaml: &serde_yaml_ng::Value, parameters: &BTreeMap<String, Value>) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        // AWS::NoValue (null here) removes an item from a list, as CloudFormation does.
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|i| evaluate(i, parameters))
                .filter(|v| !v.is_null())
                .collect(),
        ),
        Y::Mapping(map) => {
            if map.len() == 1 {
                let (key, value) = map.iter().next().unwrap();
                if let Some(function) = key
                    .as_str()
                    .filter(|k| *k == "Ref" || k.starts_with("Fn::"))
                {
                    return intrinsic(
                        function.trim_start_matches("Fn::"),
                        &evaluate(value, parameters),
                        parameters,
                    );
                }
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_owned(),
                            evaluate(v, parameters),
                        )
                    })
                    .collect::<Map<_, _>>(),
            )
        }
        Y::Tagged(tagged) => {
            let TaggedValue { tag, value } = tagged.as_ref();
            let name = tag.to_string();
            intrinsic(
                name.trim_start_matches('!'),
                &evaluate(value, parameters),
                parameters,
            )
        }
    }
}

fn intrinsic(function: &str, argument: &Value, parameters: &BTreeMap<String, Value>) -> Value {
    let substitute = |text: &str, extra: &Map<String, Value>| {
        let mut out = text.to_owned();
        for (name, value) in parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .chain(extra.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if let Some(value) = value.as_str() {
                out = out.replace(&format!("${{{name}}}"), value);
            }
        }
        json!(out)
    };
    match function {
        "Ref" => {
            let name = argument.as_str().unwrap();
            parameters
                .get(name)
                .cloned()
                .unwrap_or_else(|| json!(format!("ref:{name}")))
        }
        "Sub" => match argument {
            Value::String(text) => substitute(text, &Map::new()),
            Value::Array(parts) => {
                substitute(parts[0].as_str().unwrap(), parts[1].as_object().unwrap())
            }
            other => panic!("Sub of {other}"),
        },
        "Join" => {
            let separator = argument[0].as_str().unwrap();
            let items: Vec<&str> = argument[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            json!(items.join(separator))
        }
        "Split" => {
            let separator = argument[0].as_str().unwrap();
            json!(
                argument[1]
                    .as_str()
                    .unwrap()
                    .split(separator)
                    .collect::<Vec<_>>()
            )
        }
        "GetAtt" => json!(format!(
            "getatt:{}",
            argument
                .as_str()
                .map_or_else(|| argument.to_string(), str::to_owned)
        )),
        "If" => {
            let condition = argument[0].as_str().unwrap();
            let holds = parameters
                .get(&format!("condition:{condition}"))
                .and_then(Value::as_bool)
                .unwrap_or_else(|| panic!("condition {condition} is not evaluated"));
            argument[if holds { 1 } else { 2 }].clone()
        }
        "Equals" => json!(argument[0] == argument[1]),
        "Not" => json!(!argument[0].as_bool().unwrap()),
        other => panic!("the template uses {other}, which this test does not evaluate"),
    }
}

pub fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}
