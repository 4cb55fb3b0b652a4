import json
from webclient import Browser, WebClient

def show(r):
    import xml.dom.minidom
    if "xml" in r.content_type:
        try: xml.dom.minidom.parseString(r.get_data()); print("PARSES", r.get_data()[39:200])
        except Exception as e: print("XML ERROR", e, r.get_data()[39:200])
    print(r.status_code, r.headers.get("Location"), r.content_type)
    print(r.get_data(as_text=True)[:300])

def test_probe(make_app, make_client, instance_dir, smtp_server):
    for kind in ("json", "xml"):
        c = make_client()
        c.init_session(kind)
        c.login()
        for depth in (50, 200, 900, 5000):
            body = '[{"marié": ' + '['*depth + ']'*depth + ', "enfants":1,"salaire":1}]'
            r = c.post(c.url("calculer-impots"), data=body, content_type="application/json"); show(r)
        for key in ("@a", "#text", "a:b"):
            r = c.post(c.url("calculer-impots"), json=[{key: 1}]); show(r)
    print(len(smtp_server.messages))
