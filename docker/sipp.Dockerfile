# A SIPp far end for trying outdial: Debian's sip-tester playing every call outcome by the
# last digit of the dialled number (sip-fixtures/scenarios/uas_outcomes.xml).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends sip-tester \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 sipp
COPY sip-fixtures/scenarios/uas_outcomes.xml /scenarios/uas_outcomes.xml
USER sipp
WORKDIR /tmp
EXPOSE 5080/udp
ENTRYPOINT ["sipp", "-sf", "/scenarios/uas_outcomes.xml", "-p", "5080", "-t", "u1", "-nostdin", "-bg", "-trace_err"]
