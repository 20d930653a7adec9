# Decodes one message file of hive-sim's SmtpSink with Python's `email` package: subject,
# from, to (each empty when absent), content type, and every text part decoded, as one line
# of JSON.
import email, json, sys
from email import policy
message = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
parts = [{"content_type": p.get_content_type(), "text": p.get_content()}
         for p in message.walk() if p.get_content_maintype() == "text"]
header = lambda name: str(message[name] or "")
print(json.dumps({"subject": header("subject"), "from": header("from"), "to": header("to"),
                  "content_type": message.get_content_type(), "parts": parts}))
