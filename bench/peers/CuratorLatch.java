/*
 * One Apache Curator LeaderLatch participant of the bench's handover and failover suites.
 *
 * It uses Curator as a Java service would: one CuratorFramework per process, a LeaderLatch
 * with a LeaderLatchListener, start() to join. LeaderLatch has no resign: a leader gives up by
 * closing its latch (its znode is deleted), and rejoins at the back of the queue with a new
 * latch.
 *
 * It speaks the bench's candidate protocol (bench/src/candidate-protocol.ts) in JSON lines:
 * commands on stdin ({"op":"campaign"|"resign"|"close"}), events on stdout ("ready",
 * "elected", "resigned", "error"). Timestamps are System.nanoTime(), which is CLOCK_MONOTONIC
 * on Linux (the clock of Node's process.hrtime.bigint()), as decimal strings. End of stdin is
 * "close".
 *
 * Usage: java -cp <classes and Debian's Curator, ZooKeeper, Guava, SLF4J jars> CuratorLatch
 *        '<CandidateConfig as JSON>'
 */

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorLatch {
  private static PrintStream out;

  private CuratorLatch() {}

  public static void main(String[] args) throws Exception {
    // stdout carries the events only: anything a library prints goes to stderr.
    out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err);
    if (args.length != 1) {
      System.err.println("usage: CuratorLatch '<CandidateConfig JSON>'");
      System.exit(2);
    }
    String endpoint = field(args[0], "endpoint");
    String path = "/bench/" + field(args[0], "election");
    String value = field(args[0], "value");
    int ttlMs = Integer.parseInt(field(args[0], "ttlMs"));

    CuratorFramework client =
        CuratorFrameworkFactory.builder()
            .connectString(endpoint)
            .sessionTimeoutMs(ttlMs)
            .connectionTimeoutMs(Math.min(ttlMs, 5_000))
            .retryPolicy(new ExponentialBackoffRetry(100, 3))
            .build();
    client.start();
    try {
      client.checkExists().forPath("/bench/warm-up");
    } catch (Exception e) {
      report(e);
      System.exit(1);
    }
    // The session timeout in force: the one the server negotiated.
    int negotiatedMs = client.getZookeeperClient().getZooKeeper().getSessionTimeout();
    emit("{\"ev\":\"ready\",\"pid\":" + ProcessHandle.current().pid() + "}");

    Candidate candidate = new Candidate(client, path, value, negotiatedMs);
    // Commands run one at a time, in order.
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      String op = field(line, "op");
      try {
        if (op.equals("campaign")) {
          candidate.campaign();
        } else if (op.equals("resign")) {
          candidate.resign();
        } else if (op.equals("close")) {
          break;
        } else {
          emit("{\"ev\":\"error\",\"message\":" + quote("unknown command " + op) + "}");
        }
      } catch (Exception e) {
        report(e);
      }
    }
    // "close", or end of stdin: the parent went away. A close that hangs must not keep the JVM.
    Thread exit =
        new Thread(
            () -> {
              try {
                Thread.sleep(3_000);
              } catch (InterruptedException e) {
                // exiting anyway
              }
              Runtime.getRuntime().halt(0);
            });
    exit.setDaemon(true);
    exit.start();
    candidate.close();
    client.close();
    System.exit(0);
  }

  /** The participant: one latch at a time. */
  private static final class Candidate {
    private final CuratorFramework client;
    private final String path;
    private final String value;
    private final int ttlMs;
    private LeaderLatch latch;

    Candidate(CuratorFramework client, String path, String value, int ttlMs) {
      this.client = client;
      this.path = path;
      this.value = value;
      this.ttlMs = ttlMs;
    }

    void campaign() throws Exception {
      LeaderLatch next = new LeaderLatch(client, path, value);
      next.addListener(
          new LeaderLatchListener() {
            @Override
            public void isLeader() {
              long t = System.nanoTime();
              emit(
                  "{\"ev\":\"elected\",\"t\":\""
                      + t
                      + "\",\"ttlMs\":"
                      + ttlMs
                      + ",\"epoch\":\"\"}");
            }

            @Override
            public void notLeader() {}
          });
      latch = next;
      next.start();
    }

    void resign() throws Exception {
      long t0 = System.nanoTime();
      latch.close(); // deletes this latch's znode: the next in line leads
      long t1 = System.nanoTime();
      emit("{\"ev\":\"resigned\",\"t0\":\"" + t0 + "\",\"t1\":\"" + t1 + "\"}");
      campaign(); // rejoin at the back of the queue
    }

    void close() {
      try {
        if (latch != null) latch.close();
      } catch (Exception e) {
        // closing anyway
      }
    }
  }

  private static synchronized void emit(String json) {
    out.println(json);
    out.flush();
  }

  private static void report(Exception e) {
    emit("{\"ev\":\"error\",\"message\":" + quote(String.valueOf(e)) + "}");
  }

  /**
   * A top-level field of the flat JSON objects the bench sends (string or number values with
   * no escapes: names, URLs, numbers), as a string.
   */
  private static String field(String json, String name) {
    Matcher m =
        Pattern.compile("\"" + name + "\"\\s*:\\s*(?:\"([^\"]*)\"|(-?[0-9.]+))").matcher(json);
    if (!m.find()) throw new IllegalArgumentException("no \"" + name + "\" in " + json);
    return m.group(1) != null ? m.group(1) : m.group(2);
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
