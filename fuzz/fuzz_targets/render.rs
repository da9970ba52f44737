//! Template renderer. The first byte picks a mode:
//! - even: the rest is a template, rendered in both escapes and as a `when` condition against a
//!   fixed context: no panic, errors are values;
//! - odd: the rest is a value put into `etcdutl snapshot restore {{value}}`: the rendered command,
//!   split as a shell splits it, gives back exactly three words, the value whole (no injection).
#![no_main]

use etcdrill::render::{Escape, Renderer, TemplateContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut renderer = Renderer::new();
    if mode % 2 == 0 {
        let context = TemplateContext::new(serde_json::json!({
            "params": {"snapshot": "/b/s.db", "count": 3, "flag": true, "empty": ""},
            "node": {"name": "cp1", "data_dir": "/var/lib/etcd", "address": "10.0.0.11"},
            "nodes": [{"name": "cp1"}, {"name": "cp2"}],
        }));
        let _ = renderer.render(Escape::Shell, text, &context);
        let _ = renderer.render(Escape::Plain, text, &context);
        let _ = renderer.condition(text, &context);
    } else {
        if text.contains('\0') {
            return;
        }
        let context = TemplateContext::new(serde_json::json!({"value": text}));
        let command = renderer
            .render(
                Escape::Shell,
                "etcdutl snapshot {{value}} restore",
                &context,
            )
            .expect("a plain placeholder renders");
        let words = shlex::split(&command).expect("a rendered command is valid shell");
        assert_eq!(words, ["etcdutl", "snapshot", text, "restore"], "{command}");
    }
});
