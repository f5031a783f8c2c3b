/*
 * One Apache Curator LeaderLatch participant, driven over stdin/stdout by the tenure interop
 * tests (see curator-participant.ts). It is the reference a tenure candidate must interoperate
 * with: Curator writes `<latchPath>/_c_<uuid>-latch-<seq>` (protected mode, ephemeral
 * sequential) with the participant id as data, and the lowest sequence leads.
 *
 * Usage: java -cp <classpath> CuratorParticipant <connectString> <latchPath> <participantId>
 *        <sessionTimeoutMs>
 *
 * stdout carries one JSON object per line and nothing else (everything a library prints goes to
 * stderr):
 *   {"type":"started","curatorVersion":"5.4.0","zookeeperVersion":"3.8.0"}
 *                                                      the latch has started (its znode may not exist yet)
 *   {"type":"isLeader","path":"<getOurPath()>"}        LeaderLatchListener.isLeader
 *   {"type":"notLeader"}                               LeaderLatchListener.notLeader
 *   {"type":"state","state":"CONNECTED|SUSPENDED|LOST|RECONNECTED|READ_ONLY"}
 *   {"type":"error","message":"…"}                     an unhandled error inside Curator
 *   {"type":"error","command":"…","message":"…"}       a command that failed
 *   {"type":"closed"}                                  reply to `close`
 *   {"type":"status","hasLeadership":…,"ourPath":…,"leaderId":…,"participants":[…]}  reply to `status`
 * stdin takes one command per line: `status`, `close` (LeaderLatch.close(NOTIFY_LEADER)), `exit`
 * (close the latch and the client, exit 0). End of stdin is the same as `exit`, so the JVM never
 * outlives a parent that went away.
 */

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.retry.ExponentialBackoffRetry;

public final class CuratorParticipant {
  private static PrintStream events;

  private CuratorParticipant() {}

  public static void main(String[] args) throws Exception {
    // Claim the real stdout for the JSON lines; anything else printed goes to stderr.
    events = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    System.setOut(System.err);
    quietLogging();

    if (args.length != 4) {
      System.err.println(
          "usage: CuratorParticipant <connectString> <latchPath> <participantId> <sessionTimeoutMs>");
      System.exit(2);
    }
    String connectString = args[0];
    String latchPath = args[1];
    String id = args[2];
    int sessionTimeoutMs = Integer.parseInt(args[3]);

    CuratorFramework client =
        CuratorFrameworkFactory.builder()
            .connectString(connectString)
            .sessionTimeoutMs(sessionTimeoutMs)
            // Curator warns when the connection timeout exceeds the session timeout.
            .connectionTimeoutMs(Math.min(sessionTimeoutMs, 5_000))
            // Sleeps of 100 ms × random(1 … 2^(n+1) − 1): at most 1.5 s; no max, whose cap
            // Curator announces with a WARN on every retry that reaches it.
            .retryPolicy(new ExponentialBackoffRetry(100, 3))
            .build();
    client
        .getConnectionStateListenable()
        .addListener((c, state) -> emit("{\"type\":\"state\",\"state\":" + json(state.name()) + "}"));
    client
        .getUnhandledErrorListenable()
        .addListener((message, e) -> emit("{\"type\":\"error\",\"message\":" + json(message + ": " + e) + "}"));
    client.start();

    LeaderLatch latch = new LeaderLatch(client, latchPath, id);
    latch.addListener(
        new LeaderLatchListener() {
          @Override
          public void isLeader() {
            emit("{\"type\":\"isLeader\",\"path\":" + json(latch.getOurPath()) + "}");
          }

          @Override
          public void notLeader() {
            emit("{\"type\":\"notLeader\"}");
          }
        });
    latch.start();
    emit(
        "{\"type\":\"started\",\"curatorVersion\":"
            + json(mavenVersion("org.apache.curator", "curator-recipes"))
            + ",\"zookeeperVersion\":"
            + json(mavenVersion("org.apache.zookeeper", "zookeeper"))
            + "}");

    BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = stdin.readLine()) != null) {
      String command = line.trim();
      if (command.isEmpty()) continue;
      try {
        switch (command) {
          case "status" -> emit(status(latch));
          case "close" -> {
            closeLatch(latch);
            emit("{\"type\":\"closed\"}");
          }
          case "exit" -> {
            exit(client, latch);
            return;
          }
          default -> emit(commandError(command, "unknown command"));
        }
      } catch (Exception e) {
        emit(commandError(command, e.toString()));
      }
    }
    exit(client, latch);
  }

  private static void quietLogging() {
    // slf4j-simple, when it is on the classpath: warnings and errors only, on stderr.
    setDefault("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    setDefault("org.slf4j.simpleLogger.logFile", "System.err");
    setDefault("org.slf4j.simpleLogger.showDateTime", "true");
    // ZooKeeper's client warns with a stack trace on every ordinary close.
    setDefault("org.slf4j.simpleLogger.log.org.apache.zookeeper.ClientCnxn", "error");
  }

  private static void setDefault(String key, String value) {
    if (System.getProperty(key) == null) System.setProperty(key, value);
  }

  /** The version in a jar's Maven pom.properties (Debian's jars have no Implementation-Version). */
  private static String mavenVersion(String groupId, String artifactId) {
    String resource = "/META-INF/maven/" + groupId + "/" + artifactId + "/pom.properties";
    try (InputStream in = CuratorParticipant.class.getResourceAsStream(resource)) {
      if (in == null) return null;
      Properties properties = new Properties();
      properties.load(in);
      return properties.getProperty("version");
    } catch (IOException e) {
      return null;
    }
  }

  private static String status(LeaderLatch latch) throws Exception {
    List<String> ids = new ArrayList<>();
    for (Participant p : latch.getParticipants()) ids.add(json(p.getId()));
    return "{\"type\":\"status\",\"hasLeadership\":"
        + latch.hasLeadership()
        + ",\"ourPath\":"
        + json(latch.getOurPath())
        + ",\"leaderId\":"
        + json(latch.getLeader().getId())
        + ",\"participants\":["
        + String.join(",", ids)
        + "]}";
  }

  private static void closeLatch(LeaderLatch latch) throws Exception {
    if (latch.getState() == LeaderLatch.State.STARTED) latch.close(LeaderLatch.CloseMode.NOTIFY_LEADER);
  }

  private static void exit(CuratorFramework client, LeaderLatch latch) {
    try {
      closeLatch(latch);
    } catch (Exception e) {
      System.err.println("CuratorParticipant: closing the latch failed: " + e);
    }
    client.close();
    events.flush();
    System.exit(0);
  }

  private static String commandError(String command, String message) {
    return "{\"type\":\"error\",\"command\":" + json(command) + ",\"message\":" + json(message) + "}";
  }

  private static synchronized void emit(String line) {
    events.print(line);
    events.print('\n');
    events.flush();
  }

  private static String json(String s) {
    if (s == null) return "null";
    StringBuilder out = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    return out.append('"').toString();
  }
}
