"""Test stand-in for ansible.eda.aws_sqs_queue (Galaxy is unreachable here): same arguments and event shape
({"body": <JSON-decoded body or text>, "meta": {"MessageId": ...}}), deleting each message once queued."""
import asyncio
import json
import os

import boto3


async def main(queue, args):
    client = boto3.client("sqs", region_name=args.get("region"), endpoint_url=args.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL"))
    url = client.get_queue_url(QueueName=args["name"])["QueueUrl"]
    while True:
        answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = message["Body"]
            await queue.put({"body": body, "meta": {"MessageId": message["MessageId"]}})
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        await asyncio.sleep(float(args.get("delay_seconds", 2)))
